import numpy as np
import pytest

from tests.conftest import REPO, dvc_stages
from transferlab.evaluation.metrics import (
    confusion_rows,
    method_metrics,
    method_names,
    timed_stages,
)
from transferlab.params import to_dict


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


def test_the_timeline_expects_a_timing_from_every_stage_dvc_yaml_runs(params):
    stages = set(dvc_stages((REPO / "dvc.yaml").read_text(), to_dict(params)))
    # validate logs no run; evaluate adds its own timing as it writes the timeline; a
    # strategy that starts from the probe runs as finetune@<strategy>, like the others.
    runs = {s.replace("finetune_from_probe@", "finetune@") for s in stages}
    assert timed_stages(params) == runs - {"validate", "evaluate"}
