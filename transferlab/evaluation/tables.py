"""The CSV tables DVC draws as plots (dvc.yaml's plots and the templates in .dvc/plots/):
the training curves, the data-efficiency curves and the backbones' accuracy against cost."""

from __future__ import annotations

import csv
import io as text_io

import numpy as np

from transferlab.evaluation.kshot import curve_shots, shot_label

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


def shot_counts(shots: tuple[int | None, ...], train_labels: np.ndarray) -> list[int]:
    """Images per class each shot stands for; 'all' is the largest class's count."""
    largest = int(np.bincount(train_labels).max())
    return [largest if s is None else min(s, largest) for s in shots]


def curve_csv(summary: dict, shots: tuple[int | None, ...], train_labels: np.ndarray) -> str:
    """One row per shot count: shots, then mean and std accuracy per series."""
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["shots", *[f"{s}{suffix}" for s in summary for suffix in ("", "_std")]])
    shots = curve_shots(shots)
    labels = [shot_label(s) for s in shots]
    for label, count in zip(labels, shot_counts(shots, train_labels), strict=True):
        cells = [summary[s][label] for s in summary]
        writer.writerow([count, *[f"{c[k]:.6f}" for c in cells for k in ("mean", "std")]])
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
