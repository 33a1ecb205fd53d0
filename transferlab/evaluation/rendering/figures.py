"""The PNG figures (matplotlib, Agg): data-efficiency curves, confusion matrices,
reliability, training curves, the backbones' accuracy against cost, and the timeline."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from transferlab import io
from transferlab.evaluation.curves.kshot import curve_shots, shot_counts, shot_label
from transferlab.evaluation.rendering.tables import interval_columns
from transferlab.evaluation.scores.calibration import expected_calibration_error, reliability


def figure():
    import matplotlib

    matplotlib.use("Agg")  # no display on the machines that run stages
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    figure().close(fig)


def plot_curves(
    summary: dict, shots: tuple[int | None, ...], train_labels: np.ndarray, path: Path
) -> None:
    """Mean test accuracy against images per class, seed std as error bars."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    shots = curve_shots(shots)
    x = shot_counts(shots, train_labels)
    labels = [shot_label(s) for s in shots]
    for series, cells in summary.items():
        mean = [cells[label]["mean"] for label in labels]
        std = [cells[label]["std"] for label in labels]
        style = "-o" if series.endswith("linear") else "-s" if "finetune" in series else "--o"
        ax.errorbar(x, mean, yerr=std, fmt=style, capsize=3, label=series, ms=3)
    ax.set(xscale="log", xlabel="train images per class", ylabel="test accuracy")
    ax.set_title("Data efficiency (mean ± seed std)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_confusion(labels: np.ndarray, probs: np.ndarray, classes, title: str, path: Path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = figure()
    fig, ax = plt.subplots(figsize=(6, 6))
    ConfusionMatrixDisplay.from_predictions(
        labels,
        probs.argmax(1),
        labels=range(len(classes)),
        display_labels=classes,
        normalize="true",
        values_format=".2f",
        xticks_rotation=60,
        ax=ax,
        colorbar=False,
    )
    ax.set_title(title)
    save_figure(fig, path)


def plot_reliability(predictions: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Accuracy against confidence per bin, one line per method; the diagonal is calibrated."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":")
    for method, (labels, probs) in predictions.items():
        mean_conf, accuracy, count = reliability(labels, probs)
        filled = count > 0
        ece = expected_calibration_error(labels, probs)
        ax.plot(mean_conf[filled], accuracy[filled], "o-", ms=3, label=f"{method} (ECE {ece:.3f})")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.set_title("Reliability")
    ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_training(histories: dict[str, list[dict]], path: Path) -> None:
    """Train loss and val accuracy per epoch, per strategy."""
    plt = figure()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    for method, history in histories.items():
        epochs = [r["epoch"] for r in history]
        loss_ax.plot(epochs, [r["train_loss"] for r in history], "o-", ms=3, label=method)
        acc_ax.plot(epochs, [r["val_accuracy"] for r in history], "o-", ms=3, label=method)
    loss_ax.set(xlabel="epoch", ylabel="train loss")
    acc_ax.set(xlabel="epoch", ylabel="val accuracy")
    acc_ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_timeline(ran: dict[str, dict], cached: dict[str, dict], path: Path) -> tuple:
    """Gantt-style bars of this run's stages, each on its own row from its start, split into
    its parts; the axis spans this run alone, and cached stages are named below it. Returns
    the x axis's limits."""
    fig, ax = figure().subplots(figsize=(7, 0.4 * len(ran) + 1.5))
    origin = min((t["started"] for t in ran.values()), default=0.0)
    colours = {
        "ready_s": "#9e9e9e",
        "first_step_s": "#ff9800",
        "steady_s": "#1976d2",
        "write_s": "#7cb342",
    }
    labels = {
        "ready_s": "ready",
        "first_step_s": "first step",
        "steady_s": "steady",
        "write_s": "write",
    }
    for row, t in enumerate(ran.values()):
        left = t["started"] - origin
        for part, colour in colours.items():
            ax.barh(row, t[part], left=left, color=colour, label=labels[part] if row == 0 else None)
            left += t[part]
    end = max((t["started"] - origin + t["total_s"] for t in ran.values()), default=1.0)
    ax.set_xlim(0.0, end)
    ax.set_yticks(range(len(ran)), list(ran))
    ax.invert_yaxis()
    xlabel = "seconds since this run's first stage started"
    if cached:
        xlabel += "\n" + textwrap.fill(f"cached, not run now: {', '.join(cached)}", 90)
    ax.set(xlabel=xlabel, title="Where the time went")
    if ran:
        ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)
    return ax.get_xlim()


PROBE_NAMES = {"probe_accuracy": "linear probe", "knn_accuracy": "kNN"}  # the plots' legend


FIGURE_FILE = "backbones.png"


def plot_cost(record: dict, path: Path) -> None:
    """PNG: probe and kNN test accuracy against extraction cost (ms per image), a colour per
    candidate and a marker per probe, each with its interval as an error bar. The y axis
    spans the intervals, not the points alone, and legends name the candidates, where
    labels beside the points collided."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation

    plt = figure()
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    columns = interval_columns(record)
    markers = dict(zip(columns, ("o", "s"), strict=True))
    for place, key in enumerate(record["order"]):
        row, colour = record["candidates"][key], colours[place % len(colours)]
        cost = 1000 / row["images_per_s"]
        for column, shift in zip(columns, (-4, 4), strict=True):
            low, high = record["intervals"][column][key]
            # a few points apart, so one candidate's two bars never hide each other
            apart = ScaledTranslation(shift / 72, 0, fig.dpi_scale_trans)
            ax.errorbar(
                cost,
                row[column],
                yerr=[[row[column] - low], [high - row[column]]],
                fmt=markers[column],
                color=colour,
                capsize=3,
                transform=ax.transData + apart,
            )
            # shifted artists leave the data limits alone: give the axes the whole interval
            ax.update_datalim([(cost, low), (cost, high)])
    ax.autoscale_view()
    backbones = [
        Line2D([], [], color=colours[i % len(colours)], marker="o", ls="", label=key)
        for i, key in enumerate(record["order"])
    ]
    probes = [
        Line2D([], [], color="0.3", marker=markers[c], ls="", label=PROBE_NAMES[c]) for c in columns
    ]
    ax.add_artist(
        ax.legend(handles=backbones, title="backbone", loc="upper left", bbox_to_anchor=(1.02, 1))
    )
    ax.legend(handles=probes, title="test accuracy of", loc="lower left", bbox_to_anchor=(1.02, 0))
    ax.set_xlabel("extraction cost (ms per image, this run's device)")
    confidence = record["intervals"]["confidence"]
    ax.set_ylabel(f"test accuracy, {confidence:.0%} interval (exact binomial)")
    ax.set_title("Backbones: test accuracy against extraction cost")
    ax.grid(alpha=0.3)
    save_figure(fig, path)
