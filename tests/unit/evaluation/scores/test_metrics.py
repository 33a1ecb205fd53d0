import numpy as np
import pytest

from transferlab.evaluation.rendering.tables import confusion_rows
from transferlab.evaluation.scores.metrics import method_metrics, seed_metrics


def test_metrics_use_argmax():
    labels = np.array([0, 1, 1, 2])
    probs = np.eye(3)[[0, 1, 2, 2]]
    metrics = method_metrics(labels, probs)
    assert metrics["accuracy"] == 0.75
    # F1 per class: 1 (class 0), 2/3 (class 1: half found), 2/3 (class 2: half right)
    assert metrics["macro_f1"] == pytest.approx(7 / 9, abs=1e-6)
    assert metrics["ece"] == pytest.approx(0.25)  # confidence 1, accuracy 0.75


def test_confusion_rows_name_classes():
    text = confusion_rows(np.array([0, 1]), np.eye(2)[[1, 1]], ("cat", "dog"))
    assert text.splitlines() == ["actual,predicted", "cat,dog", "dog,dog"]


def test_over_seeds_each_metric_is_the_mean_with_the_accuracys_spread():
    labels = np.array([0, 1, 1, 2])
    seeds = [np.eye(3)[[0, 1, 2, 2]], np.eye(3)[[0, 1, 1, 2]]]  # accuracy 0.75, then 1
    out = seed_metrics(labels, seeds)
    assert out["accuracy"] == pytest.approx(0.875) and out["seeds"] == 2
    assert out["accuracy_sd"] == pytest.approx(np.std([0.75, 1.0], ddof=1), abs=1e-6)
    assert seed_metrics(labels, seeds[:1]) == method_metrics(labels, seeds[0])  # one seed: its own
