"""What a test split can decide before any model is trained: prepare states it for the data.
Its own module, so that prepare does not rerun when a verdict rule (verdict.py) changes."""

from __future__ import annotations


def smallest_significant_gain(n: int, *, confidence: float) -> float | None:
    """The smallest gain McNemar's exact test on `n` paired test images can call significant
    at `confidence`: b images that only the method gets right and none the other way, b the
    least count whose two-sided p, 2 * 0.5**b, is below 1 - confidence; None when even every
    image (b = n) is not enough."""
    b = 1
    while 2 * 0.5**b >= 1 - confidence:
        b += 1
    return b / n if 0 < b <= n else None
