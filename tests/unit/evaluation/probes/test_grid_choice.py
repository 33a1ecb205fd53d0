import numpy as np
import pytest

from transferlab.evaluation.probes.grid_choice import middle_of_best

GRID = [float(c) for c in np.logspace(-6, 5, 12)]  # params.yaml's probe grid


def test_every_value_tied_gives_the_middle_of_the_grid_not_an_end():
    # 12 tied: the 6th and 7th are the middle ones; the first of them, the stronger prior
    assert middle_of_best(GRID, dict.fromkeys(GRID, 6)) == GRID[5] == pytest.approx(0.1)
    odd = GRID[:11]
    assert middle_of_best(odd, dict.fromkeys(odd, 6)) == odd[5]


def test_a_tie_of_two_adjacent_values_gives_the_first_in_grid_order():
    scores = dict.fromkeys(GRID, 3) | {GRID[7]: 5, GRID[8]: 5}
    assert middle_of_best(GRID, scores) == GRID[7]
    assert middle_of_best(GRID[::-1], scores) == GRID[8]  # order, not value, decides


def test_a_unique_best_is_chosen_wherever_it_is():
    for best in (0, 4, 11):
        scores = dict.fromkeys(GRID, 3) | {GRID[best]: 4}
        assert middle_of_best(GRID, scores) == GRID[best]


def test_tied_values_apart_give_the_middle_tied_one_never_an_untied_value():
    scores = dict.fromkeys(GRID, 1) | {GRID[1]: 2, GRID[2]: 2, GRID[9]: 2}
    assert middle_of_best(GRID, scores) == GRID[2]


def test_the_choice_ignores_the_scores_dict_order():
    scores = dict.fromkeys(GRID, 1) | {GRID[3]: 2, GRID[4]: 2, GRID[5]: 2}
    shuffled = dict(reversed(list(scores.items())))
    assert middle_of_best(GRID, scores) == middle_of_best(GRID, shuffled) == GRID[4]


def test_an_empty_grid_is_refused():
    with pytest.raises(ValueError, match="empty grid"):
        middle_of_best([], {})
