"""Stage 5: test metrics and confusion matrices for every method."""

from __future__ import annotations

import csv
import io as text_io

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from stages import io
from stages.data import load_classes, load_prepared
from stages.errors import cli
from stages.params import Params, load_params

PROBE_METHOD = "probe"


def method_names(params: Params) -> list[str]:
    """Every method evaluated, in report order."""
    return [PROBE_METHOD, *params.finetune.strategies]


def method_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 from sklearn."""
    predicted = probs.argmax(1)
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 6),
        "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 6),
    }


def confusion_rows(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> str:
    """CSV of (actual, predicted) class names, the input of DVC's confusion template."""
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    for actual, predicted in zip(labels, probs.argmax(1), strict=True):
        writer.writerow([classes[actual], classes[predicted]])
    return buffer.getvalue()


@cli
def main() -> None:
    from stages import tracking

    params = load_params()
    classes = load_classes(params.paths.prepared)
    labels = load_prepared(params.paths.prepared, "test").labels
    metrics: dict[str, dict[str, float]] = {}
    with tracking.stage_run(
        "evaluate", {"methods": method_names(params)}, required=params.tracking.required
    ) as run:
        for method in method_names(params):
            probs = io.load_array(io.method_dir(params.paths.methods, method) / io.PREDICTIONS_FILE)
            metrics[method] = method_metrics(labels, probs)
            plot = params.paths.plots / "confusion" / f"{method}.csv"
            io.write_text(plot, confusion_rows(labels, probs, classes))
            run.log_artifact(plot, "confusion")
        io.write_json(params.paths.metrics, metrics)
        run.log_metrics(metrics)
        run.log_artifact(params.paths.metrics)
    for method, values in metrics.items():
        print(f"{method:>10}: accuracy {values['accuracy']:.4f}  macro-F1 {values['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
