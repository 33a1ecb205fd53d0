"""Multinomial logistic regression by full-batch L-BFGS in torch, float32 on any device.

The objective is scikit-learn's LogisticRegression(penalty="l2"): summed log-loss plus
||W||^2 / (2C), intercept unpenalised, so C means the same thing in both backends. It is
minimised in its mean form (divided by n), as scikit-learn does, which keeps float32
gradients well scaled; the minimiser is the same.

On CPU each fit runs on one thread (one_thread), so that its time barely depends on whether
other jobs share the machine and its result not at all on the thread count, and it keeps a
longer L-BFGS memory (CPU_HISTORY) than scikit-learn: same objective, same stopping test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.device.host import one_thread
from transferlab.evaluation.probes.grid_choice import middle_of_best

HISTORY = 10  # L-BFGS memory, scikit-learn's (scipy's maxcor) default, kept on CUDA: torch's
# two-loop recursion passes each stored pair's coefficient as a Python number, a host sync
# per pair and iteration there (not measured). On CPU a pair costs two small vector ops, and
# a longer memory reaches the same tolerance in fewer iterations: 100 pairs took 40 % fewer
# at 54,000 images and 19 % fewer at 2,700, choosing the same C (docs/benchmarks.md,
# 2026-12-07).
CPU_HISTORY = 100
TOLERANCE = 1e-4  # max |gradient| of the mean objective, scikit-learn's default tol


@dataclass(frozen=True)
class Standardiser:
    """Per-feature mean and scale (population std, zeros -> 1), like StandardScaler."""

    mean_: np.ndarray
    scale_: np.ndarray

    def transform(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean_) / self.scale_).astype(np.float32)


@dataclass(frozen=True)
class SoftmaxHead:
    """A fitted linear softmax classifier with scikit-learn's attribute names."""

    coef_: np.ndarray  # (K, D)
    intercept_: np.ndarray  # (K,)
    classes_: np.ndarray  # (K,) original labels
    n_iter_: int

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        logits = features.astype(np.float32) @ self.coef_.T + self.intercept_
        return torch.from_numpy(logits).softmax(1).numpy()

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(features).argmax(1)]


@dataclass(frozen=True)
class GridFit:
    """Scaler, head refit on train+val at the chosen C, and the val accuracy per C;
    `train_head` is the chosen C's fit on train alone, the one val scored."""

    scaler: Standardiser
    head: SoftmaxHead
    C: float
    val_accuracy: dict[float, float]
    train_head: SoftmaxHead


def standardise(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, scale) per feature; constant features get scale 1, as in StandardScaler."""
    mean = features.mean(0)
    scale = features.var(0, correction=0).sqrt()
    return mean, torch.where(scale > 0, scale, torch.ones_like(scale))


def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    C: float,
    num_classes: int,
    max_iter: int,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(W (K, D), b (K,), iterations) minimising mean log-loss + ||W||^2 / (2 C n)."""
    if x.dtype != torch.float32:
        raise TypeError(f"features must be float32, got {x.dtype}")
    if init is None:
        weight = torch.zeros(num_classes, x.shape[1], device=x.device)
        bias = torch.zeros(num_classes, device=x.device)
    else:
        weight, bias = (t.detach().clone() for t in init)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    penalty = 1.0 / (2.0 * C * len(x))
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        history_size=CPU_HISTORY if x.device.type == "cpu" else HISTORY,
        tolerance_grad=TOLERANCE,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=False)
        loss = F.cross_entropy(x @ weight.T + bias, y) + penalty * weight.square().sum()
        loss.backward()
        return loss

    with one_thread(x.device):
        optimizer.step(closure)
    n_iter = int(optimizer.state[weight].get("n_iter", 0))
    return weight.detach(), bias.detach(), n_iter


def accuracy(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> float:
    return correct_count(x, y, weight, bias) / len(y)


def correct_count(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> int:
    """Images classified right: an exact count, so equal scores compare equal."""
    return int(((x @ weight.T + bias).argmax(1) == y).sum())


@dataclass(frozen=True)
class CSearch:
    """A warm-started sweep over C on standardised features, scored on val."""

    classes: np.ndarray  # original labels; heads predict indices into it
    mean: torch.Tensor  # train statistics, the only ones used for scaling
    scale: torch.Tensor
    train: tuple[torch.Tensor, torch.Tensor]  # standardised features, class indices
    val: tuple[torch.Tensor, torch.Tensor]
    heads: dict[float, tuple[torch.Tensor, torch.Tensor]]  # (weight, bias) per C
    val_correct: dict[float, int]  # val images classified right, per C

    @property
    def val_accuracy(self) -> dict[float, float]:
        return {C: count / len(self.val[1]) for C, count in self.val_correct.items()}

    @property
    def best_C(self) -> float:
        """The C with the most val images right; ties: grid_choice's rule, the middle of the
        tied Cs (of two, the smaller)."""
        return middle_of_best(sorted(self.val_correct), self.val_correct)

    def standardised(self, features: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=self.mean.device)
        return (x - self.mean) / self.scale


def search_C(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    device: torch.device,
) -> CSearch:
    """Fit every C of `grid`, smallest first, each warm-started from the last; score on val."""
    classes = np.unique(train_labels)

    def tensors(features: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
        y = torch.as_tensor(np.searchsorted(classes, labels), device=device)
        return x, y

    train_x, train_y = tensors(train_features, train_labels)
    val_x, val_y = tensors(val_features, val_labels)
    # Standardise with train statistics only, so val and test never leak into scaling.
    mean, scale = standardise(train_x)
    train_x, val_x = (train_x - mean) / scale, (val_x - mean) / scale
    scores: dict[float, int] = {}
    heads: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
    previous = None
    for C in sorted(float(c) for c in grid):
        weight, bias, _ = fit_logistic(
            train_x, train_y, C=C, num_classes=len(classes), max_iter=max_iter, init=previous
        )
        previous = heads[C] = (weight, bias)
        scores[C] = correct_count(val_x, val_y, weight, bias)
    return CSearch(classes, mean, scale, (train_x, train_y), (val_x, val_y), heads, scores)


def fit_grid(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    device: torch.device,
) -> GridFit:
    """Choose C on val (search_C), then refit on train+val from the chosen C's solution."""
    search = search_C(
        train_features=train_features,
        train_labels=train_labels,
        val_features=val_features,
        val_labels=val_labels,
        grid=grid,
        max_iter=max_iter,
        device=device,
    )
    best_C = search.best_C
    weight, bias, n_iter = fit_logistic(
        torch.cat([search.train[0], search.val[0]]),
        torch.cat([search.train[1], search.val[1]]),
        C=best_C,
        num_classes=len(search.classes),
        max_iter=max_iter,
        init=search.heads[best_C],
    )
    scaler = Standardiser(search.mean.cpu().numpy(), search.scale.cpu().numpy())
    head = SoftmaxHead(weight.cpu().numpy(), bias.cpu().numpy(), search.classes, n_iter)
    train_weight, train_bias = (t.cpu().numpy() for t in search.heads[best_C])
    train_head = SoftmaxHead(train_weight, train_bias, search.classes, 0)
    return GridFit(scaler, head, best_C, search.val_accuracy, train_head)


def correct_at_best_C(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    device: torch.device | None = None,
) -> np.ndarray:
    """Per test image, whether the fit whose C scored best on val is right, as the curves
    keep it for McNemar's test (its mean is the test accuracy).

    The probe's own C search (search_C), without the probe's refit on train+val: that would
    add val's labels to a k-shot training set.
    """
    search = search_C(
        train_features=train_features,
        train_labels=train_labels,
        val_features=val_features,
        val_labels=val_labels,
        grid=grid,
        max_iter=max_iter,
        device=device or torch.device("cpu"),
    )
    weight, bias = search.heads[search.best_C]
    logits = search.standardised(test_features) @ weight.T + bias
    return search.classes[logits.argmax(1).cpu().numpy()] == test_labels


def accuracy_at_best_C(**fit) -> float:
    """Test accuracy of the fit whose C scored best on val (correct_at_best_C's mean)."""
    return float(correct_at_best_C(**fit).mean())
