"""Calibration and per-class recall of a method's test predictions: numbers, no words."""

from __future__ import annotations

import numpy as np

CALIBRATION_BINS = 15


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = CALIBRATION_BINS):
    """Per equal-width confidence bin: (mean confidence, accuracy, count)."""
    confidence, predicted = probs.max(1), probs.argmax(1)
    correct = (predicted == labels).astype(np.float64)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, confidence, bins) / count
        accuracy = np.bincount(which, correct, bins) / count
    return mean_conf, accuracy, count


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray) -> float:
    """ECE: count-weighted |accuracy - confidence| over equal-width confidence bins."""
    mean_conf, accuracy, count = reliability(labels, probs)
    filled = count > 0
    gaps = np.abs(accuracy[filled] - mean_conf[filled])
    return float((gaps * count[filled]).sum() / count.sum())


def per_class_accuracy(
    labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    """Recall per class: the diagonal of the row-normalised confusion matrix."""
    from sklearn.metrics import confusion_matrix  # here: rank and the curves never need it

    matrix = confusion_matrix(labels, probs.argmax(1), labels=range(len(classes)))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = matrix.diagonal() / matrix.sum(1)
    return {name: round(float(r), 6) for name, r in zip(classes, recall, strict=True)}
