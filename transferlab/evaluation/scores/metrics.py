"""Test metrics of one method's predictions: accuracy and macro-F1 (scikit-learn) and
expected calibration error, for one seed or over seeds."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from transferlab.evaluation.scores import calibration


def method_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 from sklearn, and expected calibration error."""
    predicted = probs.argmax(1)
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 6),
        "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 6),
        "ece": round(calibration.expected_calibration_error(labels, probs), 6),
    }


def seed_metrics(labels: np.ndarray, seed_probs: list[np.ndarray]) -> dict[str, float]:
    """method_metrics over a method's training seeds: one seed's own, or each metric's mean
    with the accuracy's seed standard deviation (ddof 1) and the seed count."""
    per_seed = [method_metrics(labels, probs) for probs in seed_probs]
    if len(per_seed) == 1:
        return per_seed[0]
    out = {k: round(float(np.mean([m[k] for m in per_seed])), 6) for k in per_seed[0]}
    out["accuracy_sd"] = round(float(np.std([m["accuracy"] for m in per_seed], ddof=1)), 6)
    out["seeds"] = len(per_seed)
    return out
