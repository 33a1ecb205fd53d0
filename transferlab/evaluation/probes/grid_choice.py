"""The one tie rule of every grid search here: the probe's C (on val, either backend, or by
k-shot cross-validation) and kNN's k and T.

Among the grid values tied at the best score, take the middle one, counting them in grid
order from the strongest prior to the weakest (smaller C; larger k; higher T, flatter votes).
Of two middle values (an even count), take the first, the stronger prior: when the scores
cannot tell values apart, the more regularised one assumes the least of the data. An end of
the grid is therefore chosen only when it scores best alone or tied with its one neighbour.
Ties used to go to an end: with 6 val images right at every C, the probe took C = 1e-6, the
most regularised, and came out near-uniform (accuracy 1.0, ECE 0.64). Scores are compared
with ==, so callers pass counts of images classified right (or counts over one shared
total), never float32 means.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

Value = TypeVar("Value", bound=Hashable)


def middle_of_best(grid: Sequence[Value], scores: Mapping[Value, float]) -> Value:
    """The middle of the grid values tied at the best score (`grid` ordered strongest prior
    first); of two middle values, the first."""
    if not grid:
        raise ValueError("an empty grid has nothing to choose")
    top = max(scores[value] for value in grid)
    tied = [value for value in grid if scores[value] == top]
    return tied[(len(tied) - 1) // 2]
