import dataclasses

import numpy as np

from tests.conftest import make_images
from transferlab.evaluation.curves import KINDS, PROBES, probe_rows, raw_pixels, scorer
from transferlab.evaluation.linear import accuracy_at_best_C


def test_linear_probe_on_k_shots_learns_separable_blobs():
    train, val, test = make_images(5), make_images(5, seed=1), make_images(10, seed=2)
    accuracy = accuracy_at_best_C(
        train_features=raw_pixels(train.images, 8),
        train_labels=train.labels,
        val_features=raw_pixels(val.images, 8),
        val_labels=val.labels,
        test_features=raw_pixels(test.images, 8),
        test_labels=test.labels,
        grid=np.logspace(-3, 1, 3),
        max_iter=200,
    )
    assert accuracy == 1.0
    assert raw_pixels(train.images, 8).shape == (15, 64)
    assert raw_pixels(train.images, 32).shape == (15, 256)  # never upsampled


def test_probe_rows_cover_every_series_shot_and_seed_and_fit_identical_subsets_once(params):
    splits = {
        "train": make_images(4),
        "val": make_images(2, seed=1),
        "test": make_images(5, seed=2),
    }
    pixels = {split: raw_pixels(part.images, 8) for split, part in splits.items()}
    noise = np.random.default_rng(0)
    features = {
        split: {
            "pretrained": pixels[split],  # separable: every probe gets the test set right
            "random_init": noise.normal(size=pixels[split].shape).astype(np.float32),
            "raw_pixels": pixels[split],
        }
        for split in splits
    }
    labels = {split: part.labels for split, part in splits.items()}
    params = dataclasses.replace(
        params,
        probe=dataclasses.replace(params.probe, C_min=0.01, C_max=0.1, C_num=2, max_iter=100),
        knn=dataclasses.replace(params.knn, k=3, T=0.07),
    )
    rows, fits = [], 0
    for probe in PROBES:
        score = scorer(probe, features, labels, params)
        probe_rows_, probe_fits = probe_rows(
            labels, probe=probe, score=score, shots=(1, None), seeds=2
        )
        rows += probe_rows_
        fits += probe_fits
    series = {f"{kind}_{probe}" for kind in KINDS for probe in PROBES}
    assert sorted((r["series"], r["shot"], r["seed"]) for r in rows) == sorted(
        (name, shot, seed) for name in series for shot in ("1", "all") for seed in (0, 1)
    )
    # 'all' is one subset in both seeds: 6 series x (2 one-shot subsets + 1 'all') fits
    assert fits == 6 * 3
    by_key = {(r["series"], r["shot"], r["seed"]): r for r in rows}
    for name in series:
        assert by_key[(name, "all", 0)]["subset"] == by_key[(name, "all", 1)]["subset"]
        assert by_key[(name, "1", 0)]["subset"] != by_key[(name, "1", 1)]["subset"]
    assert by_key[("pretrained_linear", "all", 0)]["accuracy"] == 1.0
    assert by_key[("pretrained_knn", "all", 1)]["accuracy"] == 1.0
    assert by_key[("random_init_linear", "all", 0)]["accuracy"] < 0.8  # noise: far from perfect
