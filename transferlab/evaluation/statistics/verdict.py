"""Transfer verdicts: is a gain beyond the noise that was measured for it? Pure functions.

Every comparison pairs two arms scored on the same test images, one correctness array per
fit, paired by seed. The test depends on how many paired fits there are (documented in
docs/methods.md, "The transfer verdict"), each at level `level` (verdict.confidence, or the
level a multiple-comparison family gives it: family.py):
- One fit of each arm (one seed, or seeds that drew identical data and fit identically):
  McNemar's exact test on the paired test images. b = #(method right, reference wrong),
  c = #(method wrong, reference right), n = test images; gain = (b - c) / n. p is the
  two-sided exact binomial test of b out of b + c at 1/2. The interval maps the
  Clopper-Pearson interval [pl, pu] of b / (b + c) to the difference: (b + c) / n * (2p - 1),
  which excludes 0 exactly when p < 1 - level. It measures test-set sampling noise only.
- Two fits: with one degree of freedom a t over seeds needs t(0.975) = 12.7 standard errors,
  so it decides almost nothing. The images are the units instead: each image's difference
  d_i = mean over fits of (method right - reference right), and a paired z test of their
  mean (the clustered McNemar test of Durkalski et al., Stat Med 2003, in its Wald form:
  the variance of the d_i about their mean, so that test and interval agree). It assumes
  independent test images, as McNemar's test does, and averages over the two seeds.
- Three or more fits (seeds that drew distinct data, or fine-tuning seeds): the two-sided
  t interval of the mean of the gains paired by seed. All arms share one test set, so this
  measures seed-to-seed variation and leaves test-set sampling noise out.
- Positive above 0, negative below 0 (only when significant), inconclusive otherwise. Fits
  whose gains have no spread leave the test undefined: inconclusive, never a zero-width
  interval read as a verdict.
- Without pretrained weights (a candidate with weights: none) nothing was transferred, so a
  gain is never called positive transfer: it is reported, and the verdict is inconclusive.
- Arms with different numbers of fits are paired on the seeds they share (pair_fits); an arm
  fitted once deterministically (a probe, kNN) pairs its one fit with every seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from transferlab.evaluation.curves.kshot import fit_key, series_name
from transferlab.params import BASELINE, Verdict

POSITIVE, NEGATIVE, INCONCLUSIVE = "positive", "negative", "inconclusive"
TEST_NOISE = "test-set sampling of one fit per arm; seed-to-seed variation unmeasured"
IMAGE_NOISE = "test-set sampling, each image averaged over the paired fits"
SEED_NOISE = "seed-to-seed, on one fixed test set; test-set sampling noise left out"
NOT_TRANSFER = "no pretrained weights: a gain is not transfer"
NO_TEST = "no spread between the fits' differences: the test is undefined, so no verdict"
MIN_T_FITS = 3  # fewer paired fits: the images are the units (t with df = 1 decides nothing)


@dataclass(frozen=True)
class Paired:
    """Two arms to compare: each fit's per-test-image correctness, paired by seed."""

    method: Sequence[np.ndarray]
    reference: Sequence[np.ndarray]
    transferred: bool = True  # False: the method's backbone has no pretrained weights


def pair_fits(
    method: Sequence[np.ndarray], reference: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The fits two arms share, by seed: fit i of each is seed i. An arm with one fit (a
    deterministic probe, or one seed) pairs it with each of the other's; otherwise the seeds
    both have."""
    method, reference = list(method), list(reference)
    if len(method) == 1 and len(reference) > 1:
        return method * len(reference), reference
    if len(reference) == 1 and len(method) > 1:
        return method, reference * len(method)
    shared = min(len(method), len(reference))
    return method[:shared], reference[:shared]


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


def mcnemar_decidable(b: int, c: int, n: int, *, level: float) -> float | None:
    """The smallest |gain| McNemar's exact test could call significant at `level` with this
    many discordant images (b + c): the least split b' of them whose p is below 1 - level,
    as a gain (2 b' - (b + c)) / n; None when even all of them one way would not be."""
    discordant = b + c
    if discordant == 0:
        return None
    for most in range((discordant + 1) // 2, discordant + 1):
        if stats.binomtest(most, discordant, 0.5).pvalue < 1 - level:
            return (2 * most - discordant) / n
    return None


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


def per_image(
    method: Sequence[np.ndarray], reference: Sequence[np.ndarray], *, confidence: float
) -> tuple[float, float, float, float]:
    """(gain, low, high, p) of the paired z test on each test image's difference averaged
    over the fits (the clustered McNemar test, Wald form); no spread: p nan (no test)."""
    diffs = np.mean(
        [
            np.asarray(m, float) - np.asarray(r, float)
            for m, r in zip(method, reference, strict=True)
        ],
        axis=0,
    )
    gain, sd = float(diffs.mean()), float(diffs.std(ddof=1))
    if sd == 0:
        return gain, gain, gain, math.nan
    se = sd / math.sqrt(len(diffs))
    half = float(stats.norm.ppf((1 + confidence) / 2)) * se
    return gain, gain - half, gain + half, 2 * float(stats.norm.sf(abs(gain) / se))


def accuracy_interval(
    correct: Sequence[np.ndarray], *, confidence: float
) -> tuple[float, float, float]:
    """(accuracy, low, high) of one arm, one correctness array per fit: one fit is the exact
    Clopper-Pearson interval of its test images (test-set sampling); two fits the normal
    interval over test images of each image's correctness averaged over them; more the t
    interval of the fits' accuracies (seed-to-seed), as `judge` treats them."""
    if len(correct) == 1:
        right, n = int(np.sum(correct[0])), len(correct[0])
        ci = stats.binomtest(right, n).proportion_ci(confidence_level=confidence, method="exact")
        return right / n, float(ci.low), float(ci.high)
    if len(correct) < MIN_T_FITS:
        zeros = [np.zeros(len(c)) for c in correct]
        accuracy, low, high, _ = per_image(correct, zeros, confidence=confidence)
        return accuracy, low, high
    mean, low, high, _ = paired_t([np.mean(c) for c in correct], confidence=confidence)
    return mean, low, high


@dataclass(frozen=True)
class Tested:
    """What a test found, before it is worded as a verdict: p unrounded, for a family."""

    gain: float
    low: float
    high: float
    p: float  # nan: no test could be made
    level: float  # the interval's level
    test: str
    noise: str
    seeds: int
    decidable: float | None  # the smallest |gain| this test could call significant here


def apply_test(pair: Paired, *, level: float) -> Tested:
    """Test `pair` at `level`, by the number of fits it pairs (the module's rule)."""
    method, reference = pair_fits(pair.method, pair.reference)
    if not method:
        raise ValueError("no fit to compare")
    k, n = len(method), len(method[0])
    if k == 1:
        b, c, n = mcnemar_counts(method[0], reference[0])
        numbers = mcnemar(b, c, n, confidence=level)
        decidable = mcnemar_decidable(b, c, n, level=level)
        return Tested(
            *numbers, level, f"McNemar exact, {n} paired test images", TEST_NOISE, 1, decidable
        )
    if k < MIN_T_FITS:
        numbers = per_image(method, reference, confidence=level)
        half = (numbers[2] - numbers[1]) / 2
        test = f"paired z over {n} test images, each averaged over {k} seeds"
        return Tested(*numbers, level, test, IMAGE_NOISE, k, half or None)
    gains = [np.mean(m) - np.mean(r) for m, r in zip(method, reference, strict=True)]
    numbers = paired_t(gains, confidence=level)
    half = (numbers[2] - numbers[1]) / 2
    return Tested(*numbers, level, f"paired t over {k} seeds", SEED_NOISE, k, half or None)


def record(tested: Tested, *, config: Verdict, transferred: bool) -> dict:
    """The verdict record: positive (negative) when the interval lies above (below) 0; p nan
    (no test could be made: the fits' differences have no spread) is inconclusive, whatever
    the gain. `p_adjusted` and `family` are the test alone's; family.py sets a family's."""
    low, high, p = tested.low, tested.high, tested.p
    verdict = POSITIVE if low > 0 else NEGATIVE if high < 0 else INCONCLUSIVE
    if math.isnan(p):
        verdict = INCONCLUSIVE
    shown = None if math.isnan(p) else float(f"{p:.4g}")
    out = {
        "verdict": verdict,
        "gain": round(tested.gain, 6),
        "low": round(low, 6),
        "high": round(high, 6),
        "confidence": config.confidence,
        "level": round(tested.level, 6),
        "p": shown,
        "p_adjusted": shown,
        "family": {"name": "alone", "size": 1, "adjust": "none"},
        "seeds": tested.seeds,
        "test": tested.test,
        "noise": tested.noise,
        "decidable": None if tested.decidable is None else round(tested.decidable, 6),
    }
    if math.isnan(p):
        out["note"] = NO_TEST
    elif verdict == POSITIVE and not transferred:
        out.update(verdict=INCONCLUSIVE, note=NOT_TRANSFER)
    return out


def judge(
    method: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    *,
    config: Verdict,
    transferred: bool = True,
) -> dict:
    """The verdict on one comparison alone, at verdict.confidence (a family's members are
    judged together instead: family.judge_family)."""
    tested = apply_test(Paired(method, reference), level=config.confidence)
    return record(tested, config=config, transferred=transferred)


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
