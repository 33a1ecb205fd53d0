"""Which method to use: the cheapest one that the most accurate does not beat beyond noise.

Every method of the studied backbone is scored on the same test images, so any two can be
judged with the verdict rule (transferlab/evaluation/verdict.py). Methods are ordered by
cost: the parameters their training updates (kNN none, the probe its head, fine-tuning the
network), equals in the pipeline's order (LP-FT, which needs the probe first, last). Wall
time is no part of the order: it varies from run to run and machine to machine, and the
recommendation must not (the report states each method's measured time beside it).

- best: the most accurate method (the cheaper of equals);
- recommended: the cheapest method that `best` does not beat beyond the noise, so a method
  within the noise of the best but cheaper is preferred: paying for accuracy that cannot be
  told from noise is not a gain;
- compared with: the same rule applied to the methods cheaper than the recommended one, i.e.
  the cheapest of those that the most accurate cheaper method does not beat. The
  recommendation's gain over it is what the extra cost buys. None when nothing is cheaper:
  then no method beats the recommended one beyond the noise.

Pure functions; the words are transferlab/evaluation/words.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transferlab.evaluation import verdict
from transferlab.params import Verdict


@dataclass(frozen=True)
class Method:
    """One method's per-test-image correctness (one array per fit) and what it trains."""

    name: str
    correct: Sequence[np.ndarray]
    trainable: int  # parameters its training updates (kNN: 0)

    @property
    def accuracy(self) -> float:
        return float(np.mean([np.mean(c) for c in self.correct]))


def cheapest_not_worse(methods: Sequence[Method], config: Verdict) -> tuple[Method, Method]:
    """(the cheapest method the most accurate one does not beat beyond noise, the most
    accurate). `methods` in cost order."""
    best = max(methods, key=lambda m: m.accuracy)  # max keeps the first, i.e. the cheaper
    for method in methods:
        if method is best or beats(best, method, config)["verdict"] != verdict.POSITIVE:
            return method, best
    raise AssertionError("unreachable: best is among the methods")


def beats(method: Method, other: Method, config: Verdict) -> dict:
    """The verdict record of `method` against `other`, fits paired by seed when both have as
    many; otherwise each arm's first fit (McNemar on the test images)."""
    a, b = list(method.correct), list(other.correct)
    if len(a) != len(b):
        a, b = a[:1], b[:1]
    return verdict.judge(a, b, config=config)


def recommend(methods: Sequence[Method], config: Verdict) -> dict:
    """The recommendation record (see the module's docstring): the method with its accuracy
    interval and trainable parameters, the most accurate method and its verdict against the
    recommended one, and the cheaper method compared with and the recommended one's verdict
    against it. No wall time: the record reproduces to the last digit."""
    if not methods:
        raise ValueError("no method to recommend")
    ordered = sorted(methods, key=lambda m: m.trainable)  # stable: equals keep their order
    chosen, best = cheapest_not_worse(ordered, config)
    accuracy, low, high = verdict.accuracy_interval(chosen.correct, confidence=config.confidence)
    fits, images = len(chosen.correct), len(chosen.correct[0])
    out = {
        "method": chosen.name,
        "accuracy": round(accuracy, 6),
        "low": round(low, 6),
        "high": round(high, 6),
        "confidence": config.confidence,
        "interval": f"t over {fits} seeds" if fits > 1 else f"exact binomial, {images} test images",
        "trainable_parameters": chosen.trainable,
        "order": [m.name for m in ordered],
        "best": best.name,
        "best_vs_recommended": None if best is chosen else beats(best, chosen, config),
        "compared_with": None,
    }
    cheaper = ordered[: ordered.index(chosen)]
    if cheaper:
        other, _ = cheapest_not_worse(cheaper, config)
        out["compared_with"] = {
            "method": other.name,
            "accuracy": round(other.accuracy, 6),
            "trainable_parameters": other.trainable,
            "verdict": beats(chosen, other, config),
        }
    return out
