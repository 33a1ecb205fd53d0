import inspect

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.conftest import synthetic_features
from transferlab.evaluation.curves.kshot import kshot_subsets
from transferlab.evaluation.probes import kshot_select, linear

CPU = torch.device("cpu")
GRID = np.array([1e-3, 1e-1, 10.0])


def kshot(k: int, seed: int = 0, signal: float = 0.9):
    """k images of each of 3 classes, 200-d, as the curves draw them."""
    x, y = synthetic_features(300, seed, signal=signal)
    index = kshot_subsets(y, (k,), seed=seed)[k]
    return x[index], y[index]


def score(train, test, **kwargs):
    options = dict(grid=GRID, max_iter=1000, seed=0, device=CPU) | kwargs
    return kshot_select.accuracy_in_budget(
        train_features=train[0],
        train_labels=train[1],
        test_features=test[0],
        test_labels=test[1],
        **options,
    )


def sklearn_cv_choice(x, y, folds, grid):
    """The same rule, written independently with scikit-learn: (choice, accuracy per C)."""
    accuracy = {}
    for C in grid:
        right = 0
        for f in np.unique(folds):
            held = folds == f
            scaler = StandardScaler().fit(x[~held])
            model = LogisticRegression(C=C, max_iter=10_000, tol=1e-8)
            model.fit(scaler.transform(x[~held]), y[~held])
            right += (model.predict(scaler.transform(x[held])) == y[held]).sum()
        accuracy[float(C)] = right / len(y)
    top = max(accuracy.values())
    tied = sorted(C for C, a in accuracy.items() if a == top)
    return tied[(len(tied) - 1) // 2], accuracy  # the middle tied C; of two, the smaller


def planted_val(train, favoured_C: float):
    """Images labelled by the val-selected probe's own prediction at favoured_C, kept only where
    some other C predicts differently: on them favoured_C scores 100% and every other C less."""
    x, _ = synthetic_features(600, 7)
    search = linear.search_C(
        train_features=train[0],
        train_labels=train[1],
        val_features=x,
        val_labels=np.zeros(len(x), dtype=int),
        grid=GRID,
        max_iter=1000,
        device=CPU,
    )
    predicted = {
        C: (search.standardised(x) @ w.T + b).argmax(1).numpy()
        for C, (w, b) in search.heads.items()
    }
    keep = np.zeros(len(x), dtype=bool)
    for other in predicted:
        if other != favoured_C:
            disagree = np.flatnonzero(predicted[other] != predicted[favoured_C])
            keep[disagree[:5]] = True
    return x[keep], search.classes[predicted[favoured_C][keep]]


def test_C_comes_from_cross_validation_on_the_subset_never_from_val_or_test():
    train = kshot(10)
    in_budget = score(train, synthetic_features(300, 2))
    folds = kshot_select.stratified_folds(train[1], 5, seed=0)
    reference, accuracy = sklearn_cv_choice(*train, folds, GRID)
    assert reference == in_budget.C
    for C, expected in accuracy.items():
        assert abs(in_budget.cv_accuracy[C] - expected) <= 1 / len(train[1])  # one image at most
    # A val set planted to favour another C: selection on val (the old rule) follows it.
    favoured_C = max(C for C in GRID if C != in_budget.C)
    val = planted_val(train, favoured_C)
    on_val = linear.search_C(
        train_features=train[0],
        train_labels=train[1],
        val_features=val[0],
        val_labels=val[1],
        grid=GRID,
        max_iter=1000,
        device=CPU,
    )
    assert on_val.best_C == favoured_C != in_budget.C
    # The in-budget rule has no val to read, and scoring on the planted set as test (where
    # favoured_C would be perfect) leaves the choice where cross-validation put it.
    assert not [
        name
        for name in inspect.signature(kshot_select.accuracy_in_budget).parameters
        if "val" in name
    ]
    on_planted = score(train, val)
    assert on_planted.C == in_budget.C and on_planted.cv_accuracy == in_budget.cv_accuracy
    assert on_planted.accuracy < 1.0


def test_folds_are_stratified_balanced_and_seeded():
    labels = np.repeat([0, 1, 2, 7], [5, 6, 9, 13])
    folds = kshot_select.stratified_folds(labels, 5, seed=3)
    assert set(folds) == set(range(5))
    for c in np.unique(labels):
        counts = np.bincount(folds[labels == c], minlength=5)
        assert counts.max() - counts.min() <= 1  # floor or ceil of n_c / 5 in every fold
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    np.testing.assert_array_equal(folds, kshot_select.stratified_folds(labels, 5, seed=3))
    assert not np.array_equal(folds, kshot_select.stratified_folds(labels, 5, seed=4))
    assert kshot_select.fold_count(np.repeat([0, 1, 2], 25)) == 5
    assert kshot_select.fold_count(np.repeat([0, 1, 2], [3, 2, 9])) == 2
    assert kshot_select.fold_count(np.repeat([0, 1, 2], 1)) == 1


@pytest.mark.parametrize("k", [2, 3, 7])
def test_each_fold_is_standardised_and_fitted_without_its_held_out_images(monkeypatch, k):
    standardised, searches = [], []
    real_standardise, real_search = linear.standardise, linear.search_C

    def spy_standardise(x):
        standardised.append(len(x))
        return real_standardise(x)

    def spy_search(**kwargs):
        searches.append(kwargs)
        return real_search(**kwargs)

    monkeypatch.setattr(linear, "standardise", spy_standardise)
    monkeypatch.setattr(linear, "search_C", spy_search)
    train = kshot(k)
    result = score(train, synthetic_features(50, 2))
    folds = min(k, 5)
    assert len(searches) == folds
    assert result.selection == f"{folds}-fold stratified CV on the {3 * k}-image subset (seed 0)"
    held_out = np.concatenate([s["val_features"] for s in searches])
    assert sorted(map(bytes, held_out)) == sorted(map(bytes, train[0]))  # each image once
    for s in searches:
        per_class = np.bincount(s["val_labels"], minlength=3)
        assert set(per_class) <= {k // folds, -(-k // folds)}  # stratified
        assert not set(map(bytes, s["val_features"])) & set(map(bytes, s["train_features"]))
    # each fold standardised on its own training folds only; the refit on the whole subset
    assert standardised == [len(s["train_features"]) for s in searches] + [3 * k]


def test_same_seed_same_choice_and_predictions():
    train, test = kshot(5), synthetic_features(200, 2)
    first, again = score(train, test, seed=1), score(train, test, seed=1)
    assert first.C == again.C and first.cv_accuracy == again.cv_accuracy
    np.testing.assert_array_equal(first.correct, again.correct)


def test_ties_go_to_the_middle_of_the_tied_Cs():
    assert kshot_select.best_C({1.0: 0.5, 0.01: 0.5, 10.0: 0.4}) == 0.01  # two: the smaller
    assert kshot_select.best_C({1.0: 0.5, 0.01: 0.5, 10.0: 0.5}) == 1.0  # three: the middle
    assert kshot_select.best_C({1.0: 0.5, 0.01: 0.5 - 1 / 2700, 10.0: 0.4}) == 1.0  # unique
    # every C right on every held-out image: the grid's middle, not its most regularised end
    easy = score(kshot(5, signal=20.0), synthetic_features(100, 2, signal=20.0))
    assert set(easy.cv_accuracy.values()) == {1.0} and easy.C == 1e-1 == np.median(GRID)


def test_one_shot_uses_the_fixed_C_nearest_one_and_no_cross_validation(monkeypatch):
    def no_search(**kwargs):
        raise AssertionError("1 shot must not cross-validate")

    fitted = []
    real_fit = linear.fit_logistic

    def spy_fit(x, y, **kwargs):
        fitted.append((len(x), kwargs["C"]))
        return real_fit(x, y, **kwargs)

    monkeypatch.setattr(linear, "search_C", no_search)
    monkeypatch.setattr(linear, "fit_logistic", spy_fit)
    grid = np.array([1e3, 1e-3, 0.4, 3.0])  # 1.0 is not on it: |log10 0.4| < |log10 3|
    result = score(kshot(1), synthetic_features(100, 2), grid=grid)
    assert result.C == 0.4 and result.cv_accuracy == {}
    assert result.selection.startswith("fixed C=0.4")
    assert fitted == [(3, 1e-3), (3, 0.4)]  # the grid path up to C, on the 3 images
    assert kshot_select.nearest_C(np.logspace(-6, 5, 12)) == 1.0
    assert kshot_select.nearest_C(np.array([10.0, 0.1])) == 0.1  # tie: the smaller C


def test_correct_is_per_test_image_and_averages_to_the_accuracy():
    x, y = kshot(5)
    test_x, test_y = synthetic_features(301, 2)
    result = score((x, y + 5), (test_x, test_y + 5))  # labels need not be 0..K-1
    assert result.correct.dtype == bool and result.correct.shape == (301,)
    assert result.correct.mean() == result.accuracy and 0.5 < result.accuracy < 1.0
    reversed_ = score((x, y + 5), (test_x[::-1], test_y[::-1] + 5))
    np.testing.assert_array_equal(reversed_.correct, result.correct[::-1])


@pytest.mark.parametrize("k", [1, 5])
def test_refit_is_the_subset_probe_at_the_chosen_C(k):
    train, test = kshot(k), synthetic_features(300, 2)
    result = score(train, test)
    scaler = StandardScaler().fit(train[0])
    model = LogisticRegression(C=result.C, max_iter=10_000, tol=1e-8)
    model.fit(scaler.transform(train[0]), train[1])
    agree = (model.predict(scaler.transform(test[0])) == test[1]) == result.correct
    assert agree.mean() >= 0.99
