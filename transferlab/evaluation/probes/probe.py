"""Multinomial logistic-regression probe on frozen features, C chosen on val."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from transferlab.evaluation.probes import linear
from transferlab.evaluation.probes.grid_choice import middle_of_best
from transferlab.params import Probe

METHOD = "probe"
# probe.backend: auto picks torch L-BFGS on CUDA, and on CPU the backend `python -m bench speed`
# measured faster at equal accuracy on this project's features (docs/benchmarks.md).
CPU_BACKEND = "torch"


@dataclass(frozen=True)
class ProbeFit:
    """A fitted probe: the scaler and classifier, the chosen C and the val score per C.

    Both backends expose scikit-learn's names: scaler.mean_/scale_/transform,
    classifier.coef_/intercept_/predict_proba.
    """

    scaler: Any  # StandardScaler | linear.Standardiser
    classifier: Any  # LogisticRegression | linear.SoftmaxHead: refit on train+val
    C: float
    val_accuracy: dict[float, float]
    backend: str
    train_classifier: Any  # the chosen C's fit on train alone: LP-FT's starting head

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(self.scaler.transform(features)).astype(np.float32)

    def head_arrays(self) -> dict[str, np.ndarray]:
        """LP-FT's starting head as plain arrays (io.HEAD_FILE): the chosen C's fit on train
        alone. LP-FT is chosen on val (its rate; with finetune.keep: best its epoch), so its
        head must not have seen val, and
        at epoch 0 it scores on val what the probe's C search measured."""
        return {
            "mean": self.scaler.mean_,
            "scale": self.scaler.scale_,
            "coef": self.train_classifier.coef_,
            "intercept": self.train_classifier.intercept_,
            "C": np.float64(self.C),
        }


def C_grid(config: Probe) -> np.ndarray:
    """Log-spaced inverse regularisation strengths, smallest first."""
    return np.logspace(np.log10(config.C_min), np.log10(config.C_max), config.C_num)


def resolve_backend(choice: str, device: torch.device) -> str:
    """'auto' -> torch on CUDA, else the measured-faster CPU backend."""
    if choice != "auto":
        return choice
    return "torch" if device.type == "cuda" else CPU_BACKEND


def fit_probe(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    backend: str = "sklearn",
    device: torch.device | None = None,
) -> ProbeFit:
    """Choose C on val (warm-starting along the grid), then refit on train+val. Of Cs tied
    on val, the middle one (grid_choice); both backends count correct images, so ties are
    exact."""
    if backend == "torch":
        fit = linear.fit_grid(
            train_features=train_features,
            train_labels=train_labels,
            val_features=val_features,
            val_labels=val_labels,
            grid=grid,
            max_iter=max_iter,
            device=device or torch.device("cpu"),
        )
        return ProbeFit(fit.scaler, fit.head, fit.C, fit.val_accuracy, backend, fit.train_head)
    if backend != "sklearn":
        raise ValueError(f"unknown probe backend {backend!r}")
    # Imported here: 0.7 s of the probe stage's start-up, and the default backend is torch.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    # Standardise with train statistics only, so val and test never leak into scaling.
    scaler = StandardScaler().fit(train_features)
    train_x, val_x = scaler.transform(train_features), scaler.transform(val_features)
    classifier = LogisticRegression(max_iter=max_iter, warm_start=True)
    correct: dict[float, int] = {}
    for C in grid:
        classifier.set_params(C=float(C)).fit(train_x, train_labels)
        correct[float(C)] = int((classifier.predict(val_x) == val_labels).sum())
    best_C = middle_of_best(sorted(correct), correct)  # the tie rule of the torch backend too
    scores = {C: count / len(val_labels) for C, count in correct.items()}
    final = LogisticRegression(C=best_C, max_iter=max_iter).fit(
        np.concatenate([train_x, val_x]), np.concatenate([train_labels, val_labels])
    )
    on_train = LogisticRegression(C=best_C, max_iter=max_iter).fit(train_x, train_labels)
    return ProbeFit(scaler, final, best_C, scores, backend, on_train)
