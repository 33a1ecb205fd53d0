import numpy as np

from stages.evaluate import confusion_rows, method_metrics, method_names


def test_metrics_use_argmax():
    labels = np.array([0, 1, 1, 2])
    probs = np.eye(3)[[0, 1, 2, 2]]
    metrics = method_metrics(labels, probs)
    assert metrics["accuracy"] == 0.75
    assert 0 < metrics["macro_f1"] < 1


def test_confusion_rows_name_classes():
    text = confusion_rows(np.array([0, 1]), np.eye(2)[[1, 1]], ("cat", "dog"))
    assert text.splitlines() == ["actual,predicted", "cat,dog", "dog,dog"]


def test_methods_follow_params(params):
    assert method_names(params) == ["probe", *params.finetune.strategies]
