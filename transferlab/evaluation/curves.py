"""Data-efficiency curves: probes on nested k-shot subsets of cached features, per seed."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.evaluation import knn, linear
from transferlab.evaluation.kshot import kshot_subsets, shot_label

KINDS = ("pretrained", "random_init", "raw_pixels")
PROBES = ("linear", "knn")
CPU = torch.device("cpu")


def linear_probe_accuracy(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    grid: np.ndarray,
    max_iter: int,
    device: torch.device = CPU,
) -> float:
    """Test accuracy of the k-shot fit whose C scored best on val.

    The probe's own C search (linear.search_C), without the probe's refit on train+val:
    that would add val's labels to a k-shot training set.
    """
    search = linear.search_C(
        train_features=train_features,
        train_labels=train_labels,
        val_features=val_features,
        val_labels=val_labels,
        grid=grid,
        max_iter=max_iter,
        device=device,
    )
    weight, bias = search.heads[search.best_C]
    logits = search.standardised(test_features) @ weight.T + bias
    predicted = search.classes[logits.argmax(1).cpu().numpy()]
    return float((predicted == test_labels).mean())


def raw_pixels(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, C) -> flat float32 pixels in [0, 1], area-downsampled to <= size."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    if max(x.shape[-2:]) > size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.flatten(1).numpy()


def probe_rows(
    features: dict[str, dict[str, np.ndarray]],
    labels: dict[str, np.ndarray],
    *,
    shots: tuple[int | None, ...],
    seeds: int,
    grid: np.ndarray,
    max_iter: int,
    knn_k: int,
    knn_T: float,
) -> tuple[list[dict], int]:
    """One row per (series, shot, seed): each kind of feature, probed linearly and by kNN.

    `features[split][kind]` for every split and kind in KINDS. Returns the rows and the
    number of distinct fits: identical subsets (e.g. 'all' in every seed) are fitted once.
    """
    train_y = labels["train"]
    rows: list[dict] = []
    seen: dict[tuple, float] = {}
    for seed in range(seeds):
        for shot, index in kshot_subsets(train_y, shots, seed=seed).items():
            for kind in KINDS:
                train_x = features["train"][kind][index]
                for probe in PROBES:
                    key = (kind, probe, index.tobytes())
                    if key not in seen:
                        if probe == "linear":
                            seen[key] = linear_probe_accuracy(
                                train_features=train_x,
                                train_labels=train_y[index],
                                val_features=features["val"][kind],
                                val_labels=labels["val"],
                                test_features=features["test"][kind],
                                test_labels=labels["test"],
                                grid=grid,
                                max_iter=max_iter,
                            )
                        else:
                            probs = knn.knn_predict_proba(
                                bank_features=train_x,
                                bank_labels=train_y[index],
                                query_features=features["test"][kind],
                                k=knn_k,
                                T=knn_T,
                                num_classes=int(train_y.max()) + 1,
                            )
                            seen[key] = float((probs.argmax(1) == labels["test"]).mean())
                    rows.append(
                        {
                            "series": f"{kind}_{probe}",
                            "shot": shot_label(shot),
                            "seed": seed,
                            "accuracy": seen[key],
                            "subset": hashlib.md5(index.tobytes()).hexdigest(),
                        }
                    )
    return rows, len(seen)
