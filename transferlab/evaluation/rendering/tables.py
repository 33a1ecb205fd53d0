"""The CSV tables evaluate writes for DVC to draw (dvc.yaml's plots and the templates in
.dvc/plots/): the confusion matrices, the training curves and the backbones' accuracy
against cost. The data-efficiency curves' tables are their stages' own (kshot.curve_csv)."""

from __future__ import annotations

import csv
import io as text_io

import numpy as np

# The per-epoch values of a fine-tuning history drawn by DVC: one plot each, <column>.csv
# under paths.plots (dvc.yaml's evaluate plots name the same files).
TRAINING_COLUMNS = ("train_loss", "val_accuracy")


def training_tables(histories: dict[str, list[dict]]) -> dict[str, str]:
    """Per TRAINING_COLUMNS entry, its DVC plot's file name and CSV (epoch,method,<column>):
    every method's rows in one table, so one chart draws them on one shared axis (template
    .dvc/plots/training.json colours by method)."""
    tables = {}
    for column in TRAINING_COLUMNS:
        lines = [f"epoch,method,{column}"]
        for method, history in histories.items():
            lines += [f"{int(r['epoch'])},{method},{r[column]:.6f}" for r in history]
        tables[f"{column}.csv"] = "\n".join(lines) + "\n"
    return tables


def confusion_rows(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> str:
    """CSV of (actual, predicted) class names, the input of DVC's confusion template."""
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    for actual, predicted in zip(labels, probs.argmax(1), strict=True):
        writer.writerow([classes[actual], classes[predicted]])
    return buffer.getvalue()


def table_csv(record: dict) -> str:
    """One row per candidate, ranked: the DVC plot of accuracy against extraction cost, each
    accuracy followed by its interval's <column>_low and <column>_high (template
    .dvc/plots/backbones.json colours each point by its backbone and draws the interval)."""
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = interval_columns(record)
    bounds = [(c, f"{c}_low", f"{c}_high") for c in columns]
    writer.writerow(["backbone", "ms_per_image", *[name for names in bounds for name in names]])
    for key in record["order"]:
        row = record["candidates"][key]
        cost = round(1000 / row["images_per_s"], 3)
        cells = [[row[c], *record["intervals"][c][key]] for c in columns]
        writer.writerow([key, cost, *[cell for triple in cells for cell in triple]])
    return buffer.getvalue()


def interval_columns(record: dict) -> list[str]:
    """The accuracy columns the comparison record gives intervals for, in its order."""
    return [column for column in record["intervals"] if column != "confidence"]
