"""The probe's grid through fit_probe, then one fit at its C: ours vs scikit-learn."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from bench.measure import timed
from transferlab.evaluation import linear
from transferlab.data.prepared import LabelledImages
from transferlab.params import Params
from transferlab.evaluation.probe import C_grid, fit_probe, resolve_backend


def probe_report(
    params: Params,
    splits: dict[str, LabelledImages],
    features: dict[str, np.ndarray],
    device: torch.device,
    *,
    grid_size: int,
    compare_max_iter: int,
    sklearn_grid: bool,
) -> dict:
    """The project's grid (time, chosen C), then one fit at that C: ours vs scikit-learn."""
    grid = C_grid(dataclasses.replace(params.probe, C_num=grid_size))
    backend = resolve_backend(params.probe.backend, device)
    fit_args = dict(
        train_features=features["train"],
        train_labels=splits["train"].labels,
        val_features=features["val"],
        val_labels=splits["val"].labels,
        grid=grid,
        max_iter=params.probe.max_iter,
        device=device,
    )
    start = time.perf_counter()
    fit = fit_probe(**fit_args, backend=backend)
    report = {
        "backend": backend,
        "grid_size": len(grid),
        "grid_seconds": time.perf_counter() - start,
    }
    report["C"] = fit.C
    report["grid_test_accuracy"] = float(
        (fit.predict_proba(features["test"]).argmax(1) == splits["test"].labels).mean()
    )
    if sklearn_grid:
        start = time.perf_counter()
        fit_probe(**fit_args, backend="sklearn")
        report["sklearn_grid_seconds"] = time.perf_counter() - start
    single = probe_single_fit(
        features["train"],
        splits["train"].labels,
        features["test"],
        splits["test"].labels,
        C=fit.C,
        max_iter=compare_max_iter,
        device=device,
    )
    report.update(single, max_iter=compare_max_iter)
    report["speedup_over_sklearn"] = single["sklearn_fit_seconds"] / single["fit_seconds"]
    report["accuracy_gap_points"] = 100 * (single["accuracy"] - single["sklearn_accuracy"])
    return report


def probe_single_fit(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    C: float,
    max_iter: int,
    device: torch.device,
) -> dict[str, float]:
    """Our L-BFGS vs scikit-learn's lbfgs at the same C on the same standardised features."""
    x, y = torch.from_numpy(train_x).to(device), torch.from_numpy(train_y).to(device)
    mean, scale = linear.standardise(x)
    x = (x - mean) / scale
    (weight, bias, n_iter), seconds = timed(
        device,
        lambda: linear.fit_logistic(
            x, y, C=C, num_classes=int(train_y.max()) + 1, max_iter=max_iter
        ),
    )
    test = (torch.from_numpy(test_x).to(device) - mean) / scale
    ours = linear.accuracy(test, torch.from_numpy(test_y).to(device), weight, bias)
    host_x, host_test = x.cpu().numpy(), test.cpu().numpy()
    reference = LogisticRegression(C=C, max_iter=max_iter)
    start = time.perf_counter()
    reference.fit(host_x, train_y)
    sk_seconds = time.perf_counter() - start
    return {
        "fit_seconds": seconds,
        "accuracy": ours,
        "iterations": n_iter,
        "sklearn_fit_seconds": sk_seconds,
        "sklearn_accuracy": float(reference.score(host_test, test_y)),
        "sklearn_iterations": int(reference.n_iter_.max()),
    }
