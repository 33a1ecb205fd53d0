"""Data-efficiency curves: a probe on nested k-shot subsets of cached features, per seed,
for pretrained features against random-init features and raw pixels.

Each probe's curve is its own stage, reading only its own params: a kNN knob never refits
a linear probe, and a linear-probe knob never reruns the kNN curve.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from transferlab import selection
from transferlab.data.layout import SPLITS, load_features, load_prepared
from transferlab.evaluation.curves import kshot
from transferlab.evaluation.curves.kshot import (
    CURVE_PROBES,
    kshot_subsets,
    shot_label,
)
from transferlab.evaluation.probes import knn, kshot_select, linear
from transferlab.evaluation.probes.probe import C_grid
from transferlab.params import Params, Paths

KINDS = ("pretrained", "random_init", "raw_pixels")
FOLD_SEED = 0  # cross-validation folds depend on the subset alone (fits are cached by subset)
# How the linear curve chose C, recorded with it (kshot_select has the rule's reasons).
LINEAR_SELECTION = (
    "k-shot subsets: C from the subset's own labels (min(k, 5)-fold stratified "
    "cross-validation; at 1 shot a fixed C, the grid value nearest 1), val never read; "
    "all of train: C on val, as the probe stage chooses it"
)
PROBES = CURVE_PROBES
# (index of the k-shot subset in train, its labels, kind of feature) -> per test image,
# whether the fitted probe got it right (its mean is the test accuracy)
Scorer = Callable[[np.ndarray, np.ndarray, str], np.ndarray]


def raw_pixels(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, C) -> flat float32 pixels in [0, 1], area-downsampled to <= size."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    if max(x.shape[-2:]) > size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.flatten(1).numpy()


def curve_inputs(
    paths: Paths, pixel_size: int
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Per split, each kind of feature (pretrained, random init, raw pixels), and the labels.
    The pretrained features are the chosen candidate's (transferlab.selection)."""
    features, labels = {}, {}
    for split in SPLITS:
        images = load_prepared(paths.prepared, split)
        features[split] = {
            "pretrained": load_features(selection.features_dir(paths), split)[0],
            "random_init": load_features(paths.random_features, split)[0],
            "raw_pixels": raw_pixels(images.images, pixel_size),
        }
        labels[split] = images.labels
    return features, labels


def scorer(
    probe: str,
    features: dict[str, dict[str, np.ndarray]],
    labels: dict[str, np.ndarray],
    params: Params,
) -> Scorer:
    """Per-test-image correctness of `probe` fitted on a k-shot subset: linear (C chosen by
    LINEAR_SELECTION) or kNN (params.knn's k, T)."""
    if probe == "linear":
        grid = C_grid(params.probe)

        def linear_score(index: np.ndarray, train_labels: np.ndarray, kind: str) -> np.ndarray:
            if len(index) < len(labels["train"]):  # a k-shot subset: C from its own labels
                return kshot_select.accuracy_in_budget(
                    train_features=features["train"][kind][index],
                    train_labels=train_labels,
                    test_features=features["test"][kind],
                    test_labels=labels["test"],
                    grid=grid,
                    max_iter=params.probe.max_iter,
                    seed=FOLD_SEED,
                ).correct
            return linear.correct_at_best_C(
                train_features=features["train"][kind][index],
                train_labels=train_labels,
                val_features=features["val"][kind],
                val_labels=labels["val"],
                test_features=features["test"][kind],
                test_labels=labels["test"],
                grid=grid,
                max_iter=params.probe.max_iter,
            )

        return linear_score
    num_classes = int(labels["train"].max()) + 1

    def knn_score(index: np.ndarray, train_labels: np.ndarray, kind: str) -> np.ndarray:
        probs = knn.knn_predict_proba(
            bank_features=features["train"][kind][index],
            bank_labels=train_labels,
            query_features=features["test"][kind],
            k=params.knn.k,
            T=params.knn.T,
            num_classes=num_classes,
        )
        return probs.argmax(1) == labels["test"]

    return knn_score


def probe_rows(
    labels: dict[str, np.ndarray],
    *,
    probe: str,
    score: Scorer,
    shots: tuple[int | None, ...],
    seeds: int,
) -> tuple[list[dict], int]:
    """One row per (series, shot, seed): every kind of feature, probed by `score` on its
    k-shot subsets of train, with its test accuracy and per-test-image `correct`. Returns
    the rows and the number of distinct fits: identical subsets (e.g. 'all' in every seed)
    are fitted once."""
    train_y = labels["train"]
    rows: list[dict] = []
    seen: dict[tuple, np.ndarray] = {}
    with tqdm(total=seeds * len(shots) * len(KINDS), desc=f"{probe} curve", mininterval=2) as bar:
        for seed in range(seeds):
            for shot, index in kshot_subsets(train_y, shots, seed=seed).items():
                for kind in KINDS:
                    key = (kind, index.tobytes())
                    if key not in seen:
                        seen[key] = score(index, train_y[index], kind)
                    rows.append(
                        {
                            "series": f"{kind}_{probe}",
                            "shot": shot_label(shot),
                            "seed": seed,
                            "accuracy": float(seen[key].mean()),
                            "subset": hashlib.md5(index.tobytes()).hexdigest(),
                            "correct": seen[key],
                        }
                    )
                    bar.update()
    return rows, len(seen)


def write_curve(
    out: Path,
    rows: list[dict],
    *,
    probe: str,
    shots: tuple[int | None, ...],
    train_labels: np.ndarray,
) -> dict:
    """kshot.write_curve for one probe's curve; the linear one records how it chose C."""
    summary = kshot.write_curve(out, rows, shots=shots, train_labels=train_labels)
    return {**summary, "C_selection": LINEAR_SELECTION} if probe == "linear" else summary
