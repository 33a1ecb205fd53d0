"""Which method to use: the cheapest one shown to be as good as the most accurate, within a
stated margin; else the most accurate. Pure functions; the words are words.py's.

Every method of the studied backbone is scored on the same test images, so any two can be
compared on paired predictions (verdict.py's tests). Methods are ordered by cost: the
parameters their training updates (kNN none, the probe its head, fine-tuning the network),
equals in the pipeline's order. Wall time is no part of the order: it varies from run to run
and machine to machine, and the recommendation must not (the report states each method's
measured time beside it).

- best: the most accurate method (by mean test accuracy over its fits; the cheaper of
  equals).
- Each method cheaper than the best is compared with it: the interval of best minus it.
  Within the margin (recommend.margin, points: the interval's upper end below it) it is
  "as good"; else, when the interval lies above 0, "worse"; else "cannot tell": the test set
  cannot decide, and the record says roughly how many test images (or seeds) would.
- recommended: the cheapest method shown as good, else the best. Absence of evidence is not
  evidence of equivalence (Benavoli et al., JMLR 2017: a region of practical equivalence):
  a cheaper method is never recommended because nothing could be told apart.
- The choice looks at every method's test accuracy, so its intervals must survive the look:
  every interval here, the recommended method's accuracy and each difference, is at the
  Bonferroni level over the K methods looked at, 1 - (1 - confidence) / K, so that all of
  them hold together at `confidence` whichever method the rule picks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from transferlab.evaluation.statistics import verdict
from transferlab.evaluation.statistics.verdict import Paired
from transferlab.params import Verdict

AS_GOOD, WORSE, CANNOT_TELL = "as good", "worse", "cannot tell"


@dataclass(frozen=True)
class Method:
    """One method's per-test-image correctness (one array per fit) and what it trains."""

    name: str
    correct: Sequence[np.ndarray]
    trainable: int  # parameters its training updates (kNN: 0)

    @property
    def accuracy(self) -> float:
        return float(np.mean([np.mean(c) for c in self.correct]))


def simultaneous_level(config: Verdict, looked_at: int) -> float:
    """Bonferroni over the methods the rule looked at: each interval at 1 - alpha / K."""
    return 1 - (1 - config.confidence) / looked_at


def outcome(difference: dict, margin: float) -> str:
    """As good (best minus it below `margin` points), worse (above 0), or cannot tell."""
    if difference["high"] < margin / 100:
        return AS_GOOD
    return WORSE if difference["low"] > 0 else CANNOT_TELL


def needed(gain: float, variance: float, *, margin: float, level: float) -> int | None:
    """Roughly how many units (test images, or seeds where the test counted seeds) would
    decide a 'cannot tell', if the difference and the variance of one unit's difference stayed
    as observed: the normal half-width z sqrt(variance / n) must clear the margin from below
    or 0 from above, whichever is nearer."""
    target = max(margin / 100 - gain, gain)
    if variance <= 0 or target <= 0:
        return None
    z = float(stats.norm.ppf((1 + level) / 2))
    return math.ceil(variance * (z / target) ** 2)


def unit_variance(best: Method, other: Method) -> tuple[float, str]:
    """The variance of one unit's difference, best minus other, and the unit: each test
    image's difference averaged over the paired fits, or each seed's gain from three on."""
    method, reference = verdict.pair_fits(best.correct, other.correct)
    if len(method) >= verdict.MIN_T_FITS:
        gains = [np.mean(m) - np.mean(r) for m, r in zip(method, reference, strict=True)]
        return float(np.var(gains, ddof=1)), "seeds"
    diffs = np.mean([m.astype(float) - r for m, r in zip(method, reference, strict=True)], axis=0)
    return float(np.var(diffs)), "test images"


def compare(best: Method, other: Method, *, config: Verdict, level: float, margin: float):
    """Best against a cheaper method at `level`: the difference's record and its outcome."""
    tested = verdict.apply_test(Paired(best.correct, other.correct), level=level)
    difference = verdict.record(tested, config=config, transferred=True)
    found = {
        "method": other.name,
        "accuracy": round(other.accuracy, 6),
        "trainable_parameters": other.trainable,
        "outcome": outcome(difference, margin),
        "difference": difference,
    }
    if found["outcome"] == CANNOT_TELL:
        variance, units = unit_variance(best, other)
        found["needed"] = needed(difference["gain"], variance, margin=margin, level=level)
        found["needed_units"] = units
    return found


def recommend(methods: Sequence[Method], config: Verdict, *, margin: float) -> dict:
    """The recommendation record (the module's docstring): the method with its accuracy
    interval and trainable parameters, the best, and every cheaper method's comparison with
    the best. No wall time: the record reproduces to the last digit."""
    if not methods:
        raise ValueError("no method to recommend")
    ordered = sorted(methods, key=lambda m: m.trainable)  # stable: equals keep their order
    best = max(ordered, key=lambda m: m.accuracy)  # max keeps the first: the cheaper
    level = simultaneous_level(config, len(ordered))
    cheaper = [
        compare(best, other, config=config, level=level, margin=margin)
        for other in ordered[: ordered.index(best)]
    ]
    chosen_name = next((c["method"] for c in cheaper if c["outcome"] == AS_GOOD), best.name)
    chosen = next(m for m in ordered if m.name == chosen_name)
    accuracy, low, high = verdict.accuracy_interval(chosen.correct, confidence=level)
    fits, images = len(chosen.correct), len(chosen.correct[0])
    return {
        "method": chosen.name,
        "accuracy": round(accuracy, 6),
        "low": round(low, 6),
        "high": round(high, 6),
        "confidence": config.confidence,
        "level": round(level, 6),
        "looked_at": len(ordered),
        "interval": interval_name(fits, images),
        "trainable_parameters": chosen.trainable,
        "order": [m.name for m in ordered],
        "best": best.name,
        "best_accuracy": round(best.accuracy, 6),
        "margin": margin,
        "cheaper": cheaper,
    }


def interval_name(fits: int, images: int) -> str:
    """How a method's accuracy interval was made (verdict.accuracy_interval)."""
    if fits == 1:
        return f"exact binomial, {images} test images"
    if fits < verdict.MIN_T_FITS:
        return f"normal over {images} test images, each averaged over {fits} seeds"
    return f"t over {fits} seeds"
