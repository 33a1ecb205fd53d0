import dataclasses

import numpy as np
import pytest

from tests.conftest import make_images, save_prepared
from transferlab.evaluation.metrics import (
    confusion_rows,
    curve_figure,
    method_metrics,
    method_names,
)


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


def test_methods_follow_params(params):
    assert method_names(params) == ["probe", "knn", *params.finetune.runs]


def test_curve_figure_adds_fine_tuning_only_when_listed(params, tmp_path):
    paths = dataclasses.replace(
        params.paths, prepared=tmp_path / "prepared", curves=tmp_path / "c", figures=tmp_path / "f"
    )
    params = dataclasses.replace(
        params, paths=paths, curves=dataclasses.replace(params.curves, shots=(1, None))
    )
    save_prepared(paths.prepared, {"train": make_images(3)}, ("a", "b", "c"))
    cell = {"mean": 0.5, "std": 0.1, "by_seed": {"0": 0.5}}
    probes = {"pretrained_linear": {"1": cell, "all": cell}}
    assert curve_figure(probes, probes, params) == paths.curves / "data_efficiency.png"
    assert not paths.figures.exists()  # the curves stage's own PNG: nothing redrawn
    both = {**probes, "finetune_full": {"1": cell, "all": cell}}
    figure = curve_figure(both, probes, params)
    assert figure == paths.figures / "data_efficiency.png"
    assert figure.read_bytes()[:4] == b"\x89PNG"
