import numpy as np
import pytest

from transferlab.evaluation.metrics import confusion_rows, method_metrics, method_names
from transferlab.evaluation.report import expected_calibration_error, per_class_accuracy


def test_metrics_use_argmax():
    labels = np.array([0, 1, 1, 2])
    probs = np.eye(3)[[0, 1, 2, 2]]
    metrics = method_metrics(labels, probs)
    assert metrics["accuracy"] == 0.75
    assert 0 < metrics["macro_f1"] < 1
    assert metrics["ece"] == pytest.approx(0.25)  # confidence 1, accuracy 0.75


def test_ece_of_calibrated_and_overconfident_predictions():
    labels = np.array([0, 0, 0, 1])
    calibrated = np.tile([0.75, 0.25], (4, 1))  # 75% confident, 75% right
    assert expected_calibration_error(labels, calibrated) == pytest.approx(0.0)
    over = np.tile([0.95, 0.05], (4, 1))
    assert expected_calibration_error(labels, over) == pytest.approx(0.2)


def test_per_class_accuracy_is_recall():
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(2)[[0, 1, 1, 1]]
    assert per_class_accuracy(labels, probs, ("a", "b")) == {"a": 0.5, "b": 1.0}


def test_confusion_rows_name_classes():
    text = confusion_rows(np.array([0, 1]), np.eye(2)[[1, 1]], ("cat", "dog"))
    assert text.splitlines() == ["actual,predicted", "cat,dog", "dog,dog"]


def test_methods_follow_params(params):
    assert method_names(params) == ["probe", "knn", *params.finetune.runs]


def test_report_orders_shot_counts_by_number(tmp_path):
    from transferlab.evaluation import report

    cell = {"mean": 0.5, "std": 0.1, "by_seed": {"0": 0.5}}
    text = report.render(
        metrics={"probe": {"accuracy": 0.8, "macro_f1": 0.8, "ece": 0.05}, "transfer": {}},
        per_class={},
        curve_summary={"pretrained_linear": {"10": cell, "5": cell, "all": cell}},
        curve_verdicts={},
        figures=[],
        root=tmp_path,
    )
    assert "| series | 5 | 10 | all |" in text


def test_curve_figure_adds_fine_tuning_only_when_listed(params, tmp_path):
    import dataclasses

    from transferlab.data import prepared as data
    from transferlab.evaluation.metrics import curve_figure
    from tests.conftest import save_prepared, make_images

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
    both = {**probes, "finetune_full": {"1": cell, "all": cell}}
    figure = curve_figure(both, probes, params)
    assert figure == paths.figures / "data_efficiency.png"
    assert figure.read_bytes()[:4] == b"\x89PNG"
