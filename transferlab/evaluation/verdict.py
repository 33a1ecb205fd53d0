"""Transfer verdicts: is a gain beyond the noise that was measured for it? Pure functions.

Every comparison pairs two arms scored on the same test images. The rule (documented in
README.md, "The transfer verdict"), at level `confidence`:
- One fit of each arm (one seed, or seeds that drew identical data and fit identically):
  McNemar's exact test on the paired test images. b = #(method right, reference wrong),
  c = #(method wrong, reference right), n = test images; gain = (b - c) / n. p is the
  two-sided exact binomial test of b out of b + c at 1/2. The interval maps the
  Clopper-Pearson interval [pl, pu] of b / (b + c) to the difference: (b + c) / n * (2p - 1),
  which excludes 0 exactly when p < 1 - confidence. It measures test-set sampling noise only.
- Two or more fits (seeds that drew distinct data, or fine-tuning seeds): the two-sided t
  interval of the mean of the gains paired by seed. All arms share one test set, so this
  measures seed-to-seed variation and leaves test-set sampling noise out.
- Positive above 0, negative below 0 (only when significant), inconclusive otherwise.
- Without pretrained weights (a candidate with weights: none) nothing was transferred, so a
  gain is never called positive transfer: it is reported, and the verdict is inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from transferlab.evaluation.kshot import fit_key, in_curve_order, series_name
from transferlab.params import BASELINE, Verdict

POSITIVE, NEGATIVE, INCONCLUSIVE = "positive", "negative", "inconclusive"
TEST_NOISE = "test-set sampling of one fit per arm; seed-to-seed variation unmeasured"
SEED_NOISE = "seed-to-seed, on one fixed test set; test-set sampling noise left out"
NOT_TRANSFER = "no pretrained weights: a gain is not transfer"


def mcnemar_counts(method: np.ndarray, reference: np.ndarray) -> tuple[int, int, int]:
    """(b, c, n): images only the method got right, only the reference did, and all."""
    method, reference = np.asarray(method, dtype=bool), np.asarray(reference, dtype=bool)
    if method.shape != reference.shape or method.ndim != 1:
        raise ValueError(f"unpaired correctness: {method.shape} against {reference.shape}")
    return int((method & ~reference).sum()), int((~method & reference).sum()), len(method)


def mcnemar(b: int, c: int, n: int, *, confidence: float) -> tuple[float, float, float, float]:
    """(gain, low, high, p) of McNemar's exact test: gain (b - c) / n, p the two-sided exact
    binomial test of b of b + c at 1/2, [low, high] the Clopper-Pearson interval of
    b / (b + c) at `confidence` mapped by q -> (b + c) / n * (2q - 1). b + c = 0: (0, 0, 0, 1)."""
    if b + c == 0:
        return 0.0, 0.0, 0.0, 1.0
    test = stats.binomtest(b, b + c, 0.5)
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    scale = (b + c) / n
    return (b - c) / n, scale * (2 * ci.low - 1), scale * (2 * ci.high - 1), float(test.pvalue)


def paired_t(gains: Sequence[float], *, confidence: float) -> tuple[float, float, float, float]:
    """(mean, low, high, p) of the gains: mean -+ t(df = k - 1) * sd / sqrt(k), p two-sided;
    zero spread: the interval is the mean alone and p is nan (no test)."""
    values = np.asarray(gains, dtype=np.float64)
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    if sd == 0:
        return mean, mean, mean, math.nan
    se = sd / math.sqrt(len(values))
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1)) * se
    p = 2 * float(stats.t.sf(abs(mean) / se, len(values) - 1))
    return mean, mean - half, mean + half, p


def accuracy_interval(
    correct: Sequence[np.ndarray], *, confidence: float
) -> tuple[float, float, float]:
    """(accuracy, low, high) of one arm, one correctness array per fit: one fit is the exact
    Clopper-Pearson interval of its test images (test-set sampling); more fits the t
    interval of their accuracies' mean (seed-to-seed, as `judge` pairs them)."""
    if len(correct) == 1:
        right, n = int(np.sum(correct[0])), len(correct[0])
        ci = stats.binomtest(right, n).proportion_ci(confidence_level=confidence, method="exact")
        return right / n, float(ci.low), float(ci.high)
    mean, low, high, _ = paired_t([np.mean(c) for c in correct], confidence=confidence)
    return mean, low, high


def record(
    gain: float,
    low: float,
    high: float,
    p: float,
    *,
    test: str,
    noise: str,
    seeds: int,
    config: Verdict,
    transferred: bool,
) -> dict:
    """The verdict record: positive (negative) when the interval lies above (below) 0."""
    verdict = POSITIVE if low > 0 else NEGATIVE if high < 0 else INCONCLUSIVE
    out = {
        "verdict": verdict,
        "gain": round(gain, 6),
        "low": round(low, 6),
        "high": round(high, 6),
        "confidence": config.confidence,
        "p": None if math.isnan(p) else float(f"{p:.4g}"),
        "seeds": seeds,
        "test": test,
        "noise": noise,
    }
    if verdict == POSITIVE and not transferred:
        out.update(verdict=INCONCLUSIVE, note=NOT_TRANSFER)
    return out


def judge(
    method: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    *,
    config: Verdict,
    transferred: bool = True,
) -> dict:
    """Verdict on two arms' per-test-image correctness, one array per fit, paired by seed:
    one fit each is McNemar's exact test, more the paired t over the fits' accuracies."""
    if len(method) != len(reference) or not method:
        raise ValueError(f"unpaired fits: {len(method)} against {len(reference)}")
    if len(method) == 1:
        b, c, n = mcnemar_counts(method[0], reference[0])
        numbers = mcnemar(b, c, n, confidence=config.confidence)
        test, noise = f"McNemar exact, {n} paired test images", TEST_NOISE
    else:
        gains = [np.mean(m) - np.mean(r) for m, r in zip(method, reference, strict=True)]
        numbers = paired_t(gains, confidence=config.confidence)
        test, noise = f"paired t over {len(method)} seeds", SEED_NOISE
    return record(
        *numbers,
        test=test,
        noise=noise,
        seeds=len(method),
        config=config,
        transferred=transferred,
    )


def paired_fits(
    rows: list[dict], method: str, reference: str, shot: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-image correctness of method and reference at one shot, paired by seed, one pair
    per distinct fit (kshot.fit_key): seeds that drew the same subset of a probe are one."""
    cells = {(r["series"], r["seed"]): r for r in rows if r["shot"] == shot}
    pairs: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for (series, seed), row in sorted(cells.items(), key=lambda kv: kv[0][1]):
        if series == method and (reference, seed) in cells:
            other = cells[(reference, seed)]
            pairs.setdefault((fit_key(row), fit_key(other)), (row["correct"], other["correct"]))
    return [m for m, _ in pairs.values()], [r for _, r in pairs.values()]


def probe_pairs(probes: Sequence[str] = ("linear", "knn")) -> dict[str, tuple[str, str]]:
    """The probe curves' comparisons: name -> (method series, reference series)."""
    return {
        f"{probe}_vs_{reference}": (f"pretrained_{probe}", f"{reference}_{probe}")
        for probe in probes
        for reference in ("random_init", "raw_pixels")
    }


def scratch_pairs(strategies_to_fit: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The fine-tuned curves' comparisons: each listed strategy against scratch on the same
    subsets, when scratch is listed."""
    if BASELINE not in strategies_to_fit:
        return {}
    return {
        f"{series_name(s)}_vs_{BASELINE}": (series_name(s), series_name(BASELINE))
        for s in strategies_to_fit
        if s != BASELINE
    }


def curve_comparisons(
    rows: list[dict],
    pairs: dict[str, tuple[str, str]],
    *,
    config: Verdict,
    transferred: bool,
) -> dict[str, dict[str, dict]]:
    """Per named (method, reference) pair of series, a verdict at each shot, in curve order.

    Rows carry each fit's per-test-image `correct`. A shot with one distinct fit per arm
    (e.g. 'all', where every seed drew the same subset) is judged by McNemar's exact test on
    it; a shot with several by the paired t over seeds.
    """
    shots = in_curve_order(dict.fromkeys(r["shot"] for r in rows))
    out: dict[str, dict[str, dict]] = {}
    for name, (method, reference) in pairs.items():
        judged: dict[str, dict] = {}
        for shot in shots:
            method_fits, reference_fits = paired_fits(rows, method, reference, shot)
            if method_fits:
                judged[shot] = judge(
                    method_fits, reference_fits, config=config, transferred=transferred
                )
        out[name] = judged
    return out
