"""The linear probe's C chosen inside the k-shot label budget: from the subset's own labels.

Choosing C on the val split (linear.accuracy_at_best_C) lets model selection see 30 labels
per class while the probe is fitted on k: at 1 shot three times more labels than training,
which makes the low-shot accuracies optimistic. Here val is never read.

Rule. Let n_min be the image count of the subset's rarest class (k for a k-shot subset).
With n_min >= 2 there are F = min(n_min, 5) stratified folds, so every image is held out
exactly once. Each C of the grid is fitted on F - 1 folds and predicts the held-out one, and
C maximises the held-out accuracy (1/n) sum_i [y_i == prediction for x_i of the fit without
its fold]: the image-weighted mean over folds, where scikit-learn's GridSearchCV averages the
folds unweighted (fold sizes differ by at most one here). It is a count over n, so ties are
exact; they follow grid_choice's rule, as the probe's C on val does: the middle of the tied
Cs in grid order, of two middle ones the smaller (the stronger prior), so that a subset too
easy to tell the Cs apart gets neither end of the grid. The fit on the folds is
linear.search_C with the held-out fold as its val: it standardises with the training folds'
statistics only and warm-starts along the grid. The probe is then refit on the whole subset
at that C and scored on test.

With n_min = 1 (1 shot) no fold can hold out an image of every class. Leave-one-out would not
help either: the held-out image's class is then absent from the fit, so every C scores 0 and
the choice would be the tie rule in disguise. At 1 shot the rule, stated in advance, is a
fixed C: the grid value nearest 1.0 in log10 (ties: the smaller), which is scikit-learn's
default C on standardised features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from transferlab.evaluation.probes import linear
from transferlab.evaluation.probes.grid_choice import middle_of_best

MAX_FOLDS = 5
FIXED_C = 1.0  # the 1-shot C, snapped to the grid: scikit-learn's default


@dataclass(frozen=True)
class BudgetScore:
    """Test score of the probe whose C was chosen inside the k-shot budget."""

    accuracy: float  # == correct.mean()
    C: float
    selection: str  # how C was chosen, for the curve's record
    correct: np.ndarray  # (n_test,) bool: test image i classified right (for McNemar)
    cv_accuracy: dict[float, float]  # held-out accuracy per C; empty at 1 shot


def fold_count(labels: np.ndarray) -> int:
    """F = min(images in the rarest class, 5); F < 2 means no cross-validation is possible."""
    return int(min(np.unique(labels, return_counts=True)[1].min(), MAX_FOLDS))


def stratified_folds(labels: np.ndarray, folds: int, *, seed: int) -> np.ndarray:
    """Fold index (0..folds-1) per image, from default_rng(seed) alone.

    Each class is shuffled, the classes are laid end to end and the images dealt round-robin:
    fold f holds floor or ceil(n_c / folds) images of class c, and fold sizes differ by <= 1.
    """
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    )
    fold = np.empty(len(labels), dtype=np.int64)
    fold[order] = np.arange(len(labels)) % folds
    return fold


def cv_accuracy(
    *,
    features: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    device: torch.device,
) -> dict[float, float]:
    """Per C, the share of images predicted right by linear.search_C fitted without their fold."""
    correct = dict.fromkeys((float(c) for c in grid), 0)
    for f in np.unique(folds):
        held = folds == f
        search = linear.search_C(
            train_features=features[~held],
            train_labels=labels[~held],
            val_features=features[held],
            val_labels=labels[held],
            grid=grid,
            max_iter=max_iter,
            device=device,
        )
        for C, count in search.val_correct.items():
            correct[C] += count
    return {C: count / len(labels) for C, count in correct.items()}


def best_C(scores: dict[float, float]) -> float:
    """argmax_C scores[C]; ties: the middle of the tied Cs, of two the smaller (grid_choice)."""
    return middle_of_best(sorted(scores), scores)


def nearest_C(grid: np.ndarray, target: float = FIXED_C) -> float:
    """The grid value minimising |log10 C - log10 target|; ties go to the smaller C."""
    values = np.sort(np.asarray(grid, dtype=float))
    return float(values[np.argmin(np.abs(np.log10(values) - np.log10(target)))])


def fit_path(
    x: torch.Tensor, y: torch.Tensor, *, grid: np.ndarray, C: float, num_classes: int, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) at C reached as search_C reaches it: every grid C <= C, smallest first, each
    warm-started from the last. Cross-validation scored these solutions, so the refit is one."""
    head = None
    for step in sorted(float(c) for c in grid if c <= C):
        head = linear.fit_logistic(
            x, y, C=step, num_classes=num_classes, max_iter=max_iter, init=head
        )[:2]
    if head is None:
        raise ValueError(f"C={C} is below the whole grid")
    return head


def accuracy_in_budget(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    seed: int,
    device: torch.device | None = None,
) -> BudgetScore:
    """Test score of the probe refit on the subset at the C chosen from its labels alone."""
    device = device or torch.device("cpu")
    folds = fold_count(train_labels)
    if folds >= 2:
        scores = cv_accuracy(
            features=train_features,
            labels=train_labels,
            folds=stratified_folds(train_labels, folds, seed=seed),
            grid=grid,
            max_iter=max_iter,
            device=device,
        )
        C = best_C(scores)
        selection = (
            f"{folds}-fold stratified CV on the {len(train_labels)}-image subset (seed {seed})"
        )
    else:
        scores, C = {}, nearest_C(grid)
        selection = f"fixed C={C:g}: 1 image of a class leaves no fold to hold out"
    classes = np.unique(train_labels)
    x = torch.as_tensor(np.ascontiguousarray(train_features, dtype=np.float32), device=device)
    y = torch.as_tensor(np.searchsorted(classes, train_labels), device=device)
    mean, scale = linear.standardise(x)
    weight, bias = fit_path(
        (x - mean) / scale, y, grid=grid, C=C, num_classes=len(classes), max_iter=max_iter
    )
    test_x = torch.as_tensor(np.ascontiguousarray(test_features, dtype=np.float32), device=device)
    logits = (test_x - mean) / scale @ weight.T + bias
    correct = classes[logits.argmax(1).cpu().numpy()] == np.asarray(test_labels)
    return BudgetScore(float(correct.mean()), C, selection, correct, scores)
