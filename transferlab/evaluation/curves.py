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

from transferlab import io, selection
from transferlab.data.prepared import SPLITS, load_features, load_prepared
from transferlab.evaluation import knn, linear, report, verdict
from transferlab.evaluation.kshot import (
    CSV_FILE,
    CURVE_PROBES,
    FIGURE_FILE,
    kshot_subsets,
    shot_label,
    summarise,
)
from transferlab.evaluation.probe import C_grid
from transferlab.params import Params, Paths

KINDS = ("pretrained", "random_init", "raw_pixels")
PROBES = CURVE_PROBES
# (index of the k-shot subset in train, its labels, kind of feature) -> test accuracy
Scorer = Callable[[np.ndarray, np.ndarray, str], float]


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
    """Test accuracy of `probe` fitted on a k-shot subset: linear (C chosen on val, as the
    probe stage does, without its refit on train+val) or kNN (params.knn's k and T)."""
    if probe == "linear":
        grid = C_grid(params.probe)

        def linear_score(index: np.ndarray, train_labels: np.ndarray, kind: str) -> float:
            return linear.accuracy_at_best_C(
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

    def knn_score(index: np.ndarray, train_labels: np.ndarray, kind: str) -> float:
        return knn.knn_accuracy(
            bank_features=features["train"][kind][index],
            bank_labels=train_labels,
            query_features=features["test"][kind],
            query_labels=labels["test"],
            k=params.knn.k,
            T=params.knn.T,
            num_classes=num_classes,
        )

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
    k-shot subsets of train. Returns the rows and the number of distinct fits: identical
    subsets (e.g. 'all' in every seed) are fitted once."""
    train_y = labels["train"]
    rows: list[dict] = []
    seen: dict[tuple, float] = {}
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
                            "accuracy": seen[key],
                            "subset": hashlib.md5(index.tobytes()).hexdigest(),
                        }
                    )
                    bar.update()
    return rows, len(seen)


def write_curve(
    out: Path,
    rows: list[dict],
    *,
    probe: str,
    params: Params,
    train_labels: np.ndarray,
    transferred: bool,
) -> dict:
    """The curve's table (its DVC plot) and PNG; returns its summary and per-shot verdicts
    (`transferred`: the features came from pretrained weights)."""
    summary = summarise(rows)
    comparisons = verdict.curve_comparisons(
        rows,
        verdict.probe_pairs((probe,)),
        config=params.verdict,
        transferred=transferred,
    )
    shots = params.curves.shots
    io.write_text(out / CSV_FILE, report.curve_csv(summary, shots, train_labels))
    report.plot_curves(summary, shots, train_labels, out / FIGURE_FILE)
    return {"series": summary, "comparisons": comparisons}
