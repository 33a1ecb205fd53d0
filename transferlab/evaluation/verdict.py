"""Transfer verdicts: is a gain beyond the noise the seeds measured? Pure functions.

The rule (documented in README.md, "Transfer verdict"):
- Two or more seeds with distinct data: the two-sided t interval (level `confidence`) of
  the mean paired gain decides; above 0 is positive, below 0 negative, else inconclusive.
- One seed (or seeds that drew identical data): |gain| must exceed `single_seed_factor`
  times a noise spread measured elsewhere for the same setting; without one, inconclusive.
- Without pretrained weights (a candidate with weights: none) nothing was transferred, so a gain
  is never called positive transfer: it is reported, and the verdict is inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from transferlab.params import Verdict

POSITIVE, NEGATIVE, INCONCLUSIVE = "positive", "negative", "inconclusive"


def judge(
    gains: Sequence[float],
    *,
    config: Verdict,
    noise: float | None = None,
    transferred: bool = True,
) -> dict:
    """Verdict, mean gain, spread and seed count for paired gains (method - reference)."""
    values = np.asarray(gains, dtype=np.float64)
    if len(values) == 0:
        raise ValueError("no gains to judge")
    gain = float(values.mean())
    if len(values) >= 2:
        spread = float(values.std(ddof=1))
        half = stats.t.ppf((1 + config.confidence) / 2, len(values) - 1) * spread
        half /= math.sqrt(len(values))
        low, high = gain - half, gain + half
        rule = f"t interval {config.confidence:g}"
    else:
        spread = float(noise) if noise is not None else float("nan")
        margin = config.single_seed_factor * spread if noise and noise > 0 else math.inf
        low, high = gain - margin, gain + margin
        rule = f"single seed: |gain| > {config.single_seed_factor:g} x noise"
    verdict = POSITIVE if low > 0 else NEGATIVE if high < 0 else INCONCLUSIVE
    if verdict == POSITIVE and not transferred:
        verdict, rule = INCONCLUSIVE, "no pretrained weights: a gain is not transfer"
    return {
        "verdict": verdict,
        "gain": round(gain, 6),
        "spread": round(spread, 6),
        "seeds": len(values),
        "rule": rule,
    }


def accuracy_difference_se(accuracy: float, n_test: int) -> float:
    """Binomial standard error of the difference of two accuracies near `accuracy`."""
    return math.sqrt(2 * accuracy * (1 - accuracy) / max(n_test, 1))


def paired_gains(rows: list[dict], method: str, reference: str, shot: str) -> list[float]:
    """method - reference per seed at one shot, one entry per distinct training subset."""
    cells = {(r["series"], r["seed"]): r for r in rows if r["shot"] == shot}
    gains: dict[str, float] = {}
    for (series, seed), row in sorted(cells.items(), key=lambda kv: kv[0][1]):
        if series == method and (reference, seed) in cells:
            gains.setdefault(row["subset"], row["accuracy"] - cells[(reference, seed)]["accuracy"])
    return list(gains.values())


def probe_pairs(probes: Sequence[str] = ("linear", "knn")) -> dict[str, tuple[str, str]]:
    """The probe curves' comparisons: name -> (method series, reference series)."""
    return {
        f"{probe}_vs_{reference}": (f"pretrained_{probe}", f"{reference}_{probe}")
        for probe in probes
        for reference in ("random_init", "raw_pixels")
    }


def curve_comparisons(
    rows: list[dict],
    pairs: dict[str, tuple[str, str]],
    *,
    config: Verdict,
    transferred: bool,
) -> dict[str, dict[str, dict]]:
    """Per named (method, reference) pair of series, a verdict at each shot count.

    A shot whose seeds all drew the same subset (e.g. 'all') is one seed; its noise is the
    gains' seed spread at the nearest smaller shot count that had distinct subsets.
    """
    shots = list(dict.fromkeys(r["shot"] for r in rows))  # in curve order
    out: dict[str, dict[str, dict]] = {}
    for name, (method, reference) in pairs.items():
        noise = None
        judged: dict[str, dict] = {}
        for shot in shots:
            gains = paired_gains(rows, method, reference, shot)
            if not gains:
                continue
            judged[shot] = judge(gains, config=config, noise=noise, transferred=transferred)
            if len(gains) >= 2:
                noise = judged[shot]["spread"]
        out[name] = judged
    return out


def typical_seed_spread(summary: dict, series: str = "pretrained_linear") -> float | None:
    """Seed spread of a series' accuracy at its largest shot count with distinct subsets."""
    spreads = [cell["std"] for cell in summary.get(series, {}).values() if len(cell["by_seed"]) > 1]
    spreads = [s for s in spreads if s > 0]
    return spreads[-1] if spreads else None
