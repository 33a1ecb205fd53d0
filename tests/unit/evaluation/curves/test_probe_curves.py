import dataclasses

import numpy as np
import pytest

from tests.conftest import make_images
from transferlab import io
from transferlab.evaluation.curves.kshot import SUMMARY_FILE, read_rows
from transferlab.evaluation.curves.probe_curves import (
    FOLD_SEED,
    KINDS,
    PROBES,
    probe_rows,
    raw_pixels,
    scorer,
    write_curve,
)
from transferlab.evaluation.probes import kshot_select
from transferlab.evaluation.probes.linear import accuracy_at_best_C, correct_at_best_C
from transferlab.evaluation.probes.probe import C_grid
from transferlab.evaluation.statistics import family, verdict


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


def curve_data(params):
    """Separable pretrained features and raw pixels, noise for random init; shrunk probes."""
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
    return features, labels, params


def test_the_linear_scorer_keeps_per_image_correctness_of_the_accuracy_it_scores(params):
    features, labels, params = curve_data(params)
    kind, index = "random_init", np.arange(0, 12, 2)
    fit = {
        "train_features": features["train"][kind][index],
        "train_labels": labels["train"][index],
        "val_features": features["val"][kind],
        "val_labels": labels["val"],
        "test_features": features["test"][kind],
        "test_labels": labels["test"],
        "grid": np.array([0.01, 0.1, 1.0]),
        "max_iter": 100,
    }
    correct = correct_at_best_C(**fit)
    assert correct.dtype == bool and correct.shape == labels["test"].shape
    assert correct.mean() == pytest.approx(accuracy_at_best_C(**fit))


def test_probe_rows_cover_every_series_shot_and_seed_and_fit_identical_subsets_once(params):
    features, labels, params = curve_data(params)
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
    for row in rows:  # each row's accuracy is its fit's per-image correctness, averaged
        assert row["correct"].shape == (15,) and row["accuracy"] == row["correct"].mean()


def test_the_curve_keeps_every_fit_and_evaluate_judges_all_by_mcnemar(params, tmp_path):
    features, labels, params = curve_data(params)
    score = scorer("knn", features, labels, params)
    rows, _ = probe_rows(labels, probe="knn", score=score, shots=(1, None), seeds=2)
    summary = write_curve(
        tmp_path, rows, probe="knn", shots=(1, None), train_labels=labels["train"]
    )
    assert "comparisons" not in summary  # the stage measures; evaluate judges
    io.write_json(tmp_path / SUMMARY_FILE, summary)
    back = read_rows(tmp_path)  # what evaluate reads
    for row, restored in zip(rows, back, strict=True):
        np.testing.assert_array_equal(restored["correct"], row["correct"])
    judged = family.curve_comparisons(
        back, verdict.probe_pairs(("knn",)), config=params.verdict, transferred=True
    )["knn_vs_random_init"]
    assert list(judged) == ["1", "all"]
    assert judged["1"]["test"].endswith("averaged over 2 seeds")  # distinct subsets at 1 shot
    assert judged["all"]["test"] == "McNemar exact, 15 paired test images"
    by_key = {(r["series"], r["shot"], r["seed"]): r for r in rows}
    method, reference = (
        by_key[(s, "all", 0)]["correct"] for s in ("pretrained_knn", "random_init_knn")
    )
    alone = verdict.judge([method], [reference], config=params.verdict)
    assert judged["all"]["p"] == alone["p"] and judged["all"]["gain"] == alone["gain"]


def test_k_shot_linear_curve_chooses_C_inside_its_budget_and_all_of_train_on_val(params):
    """k-shot fits never read val (their C comes from cross-validation on the subset: the
    curve's scores are kshot_select's); the fit on all of train chooses C on val, as the
    probe stage does."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 20)) * 2

    def blobs(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(3), per_class)
        return (centres[y] + rng.normal(size=(len(y), 20))).astype(np.float32), y

    (train_x, train_y), (val_x, val_y), (test_x, test_y) = blobs(10), blobs(30), blobs(30)
    planted_y = (val_y + 1) % 3
    features = {"train": train_x, "val": val_x, "test": test_x}
    features = {split: {kind: x for kind in KINDS} for split, x in features.items()}
    params = dataclasses.replace(
        params, probe=dataclasses.replace(params.probe, C_min=1e-4, C_max=10, C_num=6)
    )
    grid = C_grid(params.probe)
    planted = {"train": train_y, "val": planted_y, "test": test_y}
    score = scorer("linear", features, planted, params)
    subset = np.sort(np.concatenate([np.flatnonzero(train_y == c)[:4] for c in range(3)]))
    fit = {
        "train_features": train_x[subset],
        "train_labels": train_y[subset],
        "test_features": test_x,
        "test_labels": test_y,
        "grid": grid,
        "max_iter": params.probe.max_iter,
    }
    k_shot = score(subset, train_y[subset], "pretrained")
    in_budget = kshot_select.accuracy_in_budget(**fit, seed=FOLD_SEED).correct
    assert np.array_equal(k_shot, in_budget)
    noise = np.random.default_rng(4).normal(size=val_x.shape).astype(np.float32)
    other_val = {**features, "val": {kind: noise for kind in KINDS}}
    other = scorer("linear", other_val, {**planted, "val": val_y}, params)
    assert np.array_equal(other(subset, train_y[subset], "pretrained"), k_shot)  # val unread
    # (tests/unit/evaluation/probes/test_kshot_select.py plants a val that picks another C)
    everything = np.arange(len(train_y))
    fit.update(train_features=train_x, train_labels=train_y)
    on_val_all = correct_at_best_C(**fit, val_features=val_x, val_labels=planted_y)
    assert np.array_equal(score(everything, train_y, "pretrained"), on_val_all)
