"""Metrics beyond accuracy, figures (matplotlib, Agg) and the markdown report."""

from __future__ import annotations

import csv
import io as text_io
import os
import re
import textwrap
from pathlib import Path

import numpy as np

from transferlab import io
from transferlab.evaluation.kshot import curve_shots, in_curve_order, shot_label

CALIBRATION_BINS = 15
ONE_SEED_NOTE = (
    "Each strategy was fine-tuned with one seed (finetune.seeds: 1), so its verdict against "
    "scratch is McNemar's exact test on the two models' predictions for the same test "
    "images. It measures test-set sampling noise only: how much fine-tuning varies from seed "
    "to seed is unmeasured, so a gain may not repeat with another seed. With finetune.seeds: "
    "2 or more the verdict is a paired t interval over seeds instead, which measures that "
    "variation but in turn leaves test-set sampling noise out."
)
SEEDS_NOTE = (
    "Each strategy was fine-tuned with {seeds} seeds, so its verdict against scratch is a "
    "paired t interval over seeds. It measures seed-to-seed variation on this one fixed test "
    "set; test-set sampling noise, shared by both arms, is not in it (McNemar's test on each "
    "seed's predictions would measure it)."
)
PROBE_NOTE = (
    "A probe's verdict is its curve's at the largest shot count. Where every seed drew the "
    "same subset ('all'), the probe was fitted once and McNemar's exact test on the test "
    "images judges it (test-set sampling noise only); shot counts with distinct subsets are "
    "judged by a paired t interval over seeds (subset and seed variation on one fixed test "
    "set, without test-set sampling noise). A fine-tuned k-shot curve (curves.finetune) "
    "trains every seed anew, so each of its seeds is a fit of its own, even at 'all'."
)


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


SUMMARY_KEYS = ("transfer", "backbones", "recommendation")  # metrics.json's non-methods


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


def render(
    *,
    metrics: dict,
    per_class: dict[str, dict[str, float]],
    curve_summary: dict,
    curve_verdicts: dict,
    figures: list[Path],
    root: Path,
    provenance: dict | None = None,
    finetune_seeds: int = 1,
    timings: tuple[dict[str, dict], dict[str, dict]] | None = None,
    backbones: list[str] | None = None,
    studied: str | None = None,
    backbone_conclusion: str | None = None,
    training: dict[str, dict] | None = None,
) -> str:
    """The markdown report; figures are linked relative to the report's folder.
    `backbones`: the comparison's markdown lines, `backbone_conclusion` its sentence;
    `studied`: the candidate the sections after it describe; `training`: each fine-tuned
    method's training record; `timings`: the stages this run ran, and those DVC cached."""
    methods = [m for m in metrics if m not in SUMMARY_KEYS]
    lines = ["# Transfer report", ""]
    if "recommendation" in metrics:
        lines += ["## Recommendation", "", recommendation_text(metrics["recommendation"])]
        lines += ["", RECOMMENDATION_RULE, ""]
    lines += ["## Conclusion", ""]
    if backbone_conclusion:
        lines.append(f"- {backbone_conclusion}")
    if studied:
        lines.append(f"- Studied in depth (fine-tuning, curves, verdicts): {studied}.")
    lines += [f"- {sentence}" for sentence in conclusions(metrics.get("transfer", {}))]
    lines += ["", *(backbones or [])]
    lines += ["## Test metrics", ""] if backbones else ["", "## Test metrics", ""]
    lines += ["| method | accuracy | macro-F1 | ECE |", "|---|---|---|---|"]
    for m in methods:
        v = metrics[m]
        accuracy = f"{v['accuracy']:.4f}"
        if "accuracy_sd" in v:
            accuracy += f" ± {v['accuracy_sd']:.4f} ({v['seeds']} seeds)"
        lines.append(f"| {m} | {accuracy} | {v['macro_f1']:.4f} | {v['ece']:.4f} |")
    lines += verdict_lines(metrics.get("transfer", {}), curve_verdicts, finetune_seeds)
    if training:
        lines += ["", "## How each method was fine-tuned", "", *training_lines(training)]
    shots = list(in_curve_order(next(iter(curve_summary.values()), {})))
    lines += ["", "## Data efficiency (test accuracy, mean ± seed std)", ""]
    lines += ["| series | " + " | ".join(shots) + " |", "|---" * (len(shots) + 1) + "|"]
    for series, cells in curve_summary.items():
        row = [f"{cells[s]['mean']:.3f} ± {cells[s]['std']:.3f}" for s in shots]
        lines.append(f"| {series} | " + " | ".join(row) + " |")
    classes = list(next(iter(per_class.values()), {}))
    lines += ["", "## Per-class accuracy", "", "| class | " + " | ".join(per_class) + " |"]
    lines.append("|---" * (len(per_class) + 1) + "|")
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(f"{per_class[m][c]:.3f}" for m in per_class) + " |")
    lines += ["", "## Figures", ""]
    for figure in figures:
        lines.append(f"![{figure.stem}]({Path(os.path.relpath(figure, root)).as_posix()})")
    if timings:
        lines += ["", "## Where the time went (seconds)", ""] + timing_lines(*timings)
    if provenance:
        lines += ["", "## Provenance", ""] + provenance_lines(provenance)
    return "\n".join(lines) + "\n"


def training_lines(records: dict[str, dict]) -> list[str]:
    """Per fine-tuned method: its learning rate (and whether it was tuned), BatchNorm policy,
    val accuracy before the first update (epoch 0) and at its best epoch."""
    lines = [
        "| method | peak lr | BatchNorm statistics | val at epoch 0 | best val (epoch) | epochs |",
        "|---|---|---|---|---|---|",
    ]
    tuned = False
    for method, r in records.items():
        searched = r.get("lr_search")
        tuned = tuned or bool(searched)
        rates = ", ".join(f"{s['lr']:g}" for s in searched or ())
        lr = f"{r['lr']:g}" + (f" (best on val of {rates})" if searched else "")
        lines.append(
            f"| {method} | {lr} | {r['bn']} | {r['history'][0]['val_accuracy']:.4f} | "
            f"{r['val_accuracy']:.4f} ({r['best_epoch']}) | {r['epochs_run']} |"
        )
    lines += [
        "",
        "Learning rates were "
        + (
            "chosen on val from the listed rates (finetune.<strategy>.lr)."
            if tuned
            else "not tuned: each method ran at one rate (finetune.<strategy>.lr; give a list "
            "to choose on val)."
        )
        + " BatchNorm 'frozen' keeps the loaded running statistics (affine parameters train); "
        "'train' updates them on every batch.",
    ]
    return lines


# What each comparison measures, in words: (method, reference).
COMPARED = {
    "linear_vs_random_init": (
        "A linear probe on the pretrained features",
        "the same probe on randomly initialised features",
    ),
    "linear_vs_raw_pixels": ("A linear probe on the pretrained features", "one on raw pixels"),
    "knn_vs_random_init": ("kNN on the pretrained features", "kNN on randomly initialised ones"),
    "knn_vs_raw_pixels": ("kNN on the pretrained features", "kNN on raw pixels"),
}
STRATEGY_NAMES = {
    "full": "Full fine-tuning",
    "freeze": "Fine-tuning with the early stages frozen",
    "llrd": "Fine-tuning with layer-wise learning-rate decay",
    "lpft": "LP-FT (fine-tuning from the linear probe's head)",
}


RECOMMENDATION_RULE = (
    "The rule: the cheapest method (by its stages' wall time, then trainable parameters) "
    "that the most accurate one does not beat beyond the noise; the cheaper choice it is "
    "compared with is picked by the same rule among the methods cheaper than it. Times are "
    "each method's stages as measured, cached ones included."
)
METHOD_NAMES = {
    "probe": "the linear probe",
    "knn": "kNN",
    "full": "full fine-tuning",
    "scratch": "training from scratch",
    "freeze": "fine-tuning with the early stages frozen",
    "llrd": "fine-tuning with layer-wise learning-rate decay",
    "lpft": "LP-FT",
}


def method_name(method: str) -> str:
    """'full fine-tuning (full)': a method's name in words, with its key where they differ."""
    words = METHOD_NAMES.get(method, method)
    return words if words.lower() == method else f"{words} ({method})"


def amount(parameters: int | None) -> str:
    """3371008 -> '3.37 M'; None -> 'unknown'."""
    if parameters is None:
        return "unknown"
    for scale, unit in ((1e6, " M"), (1e3, " k")):
        if parameters >= scale:
            return f"{parameters / scale:.3g}{unit}"
    return str(parameters)


def cost(seconds: float | None, parameters: int | None) -> str:
    time = "time unmeasured" if seconds is None else f"{seconds:.0f} s"
    return f"{time}, {amount(parameters)} trainable parameters"


def recommendation_text(rec: dict) -> str:
    """The answer first, in one paragraph: which method to use, its accuracy and interval,
    what it gains over the cheaper choice and at what cost; or that nothing beats it."""
    head = (
        f"Use {method_name(rec['method'])}: test accuracy {rec['accuracy']:.4f} "
        f"[{rec['low']:.4f}, {rec['high']:.4f}] ({100 * rec['confidence']:g}% interval; "
        f"{rec['interval']}), {cost(rec['seconds'], rec['trainable_parameters'])}."
    )
    other = rec["compared_with"]
    if other is None:
        tail = " No method beats it beyond the noise"
        tail += "." if rec["best_vs_recommended"] is None else ", and it is the cheapest."
    else:
        ratio = ""
        if rec["seconds"] and other["seconds"]:
            ratio = f", {rec['seconds'] / other['seconds']:.1f}x its time"
        tail = (
            f" Against {method_name(other['method'])}, the cheaper choice "
            f"({other['accuracy']:.4f}; {cost(other['seconds'], other['trainable_parameters'])}"
            f"{ratio}): {evidence(other['verdict'])}, {other['verdict']['verdict']}."
        )
    best = rec["best_vs_recommended"]
    if best is not None:
        tail += (
            f" {method_name(rec['best']).capitalize()} scores higher but not beyond the noise: "
            f"{evidence(best)}."
        )
    return head + tail


VERDICT_HEAD = "| comparison | verdict | gain (points) | interval (points) | test | p |"
SHOT_HEAD = "| comparison | shots | verdict | gain (points) | interval (points) | test | p |"


P_FLOOR = 1e-10  # smaller p values print as "<1e-10": their digits are float noise


def p_text(p: float | None) -> str:
    """A p value to two digits, '<1e-10' below that, '-' where there is none."""
    return "-" if p is None else f"<{P_FLOOR:g}" if p < P_FLOOR else f"{p:.2g}"


def verdict_cells(v: dict) -> str:
    """A verdict record's table cells: verdict, gain, interval, test and p, in points."""
    low, high = 100 * v["low"], 100 * v["high"]
    return (
        f"**{v['verdict']}** | {100 * v['gain']:+.1f} | [{low:.1f}, {high:.1f}] | "
        f"{v['test']} | {p_text(v['p'])}"
    )


def verdict_intro(verdicts) -> list[str]:
    """What the verdict tables hold, with the intervals' level."""
    levels = sorted({f"{100 * v['confidence']:g}%" for v in verdicts})
    level = " or ".join(levels) or "verdict.confidence"
    return [
        "Gain: test accuracy of the method minus the reference's, in points, on the same "
        f"test images; the interval is two-sided at {level}. Positive or negative only when "
        "it excludes 0; a studied backbone without pretrained weights is never positive."
    ]


def verdict_lines(transfer: dict, curve_verdicts: dict, finetune_seeds: int) -> list[str]:
    """The report's verdict section: the headline verdicts, what noise they measured, and
    every curve comparison per shot count in curve order."""
    lines = ["", "## Transfer verdicts", "", *verdict_intro(transfer.values()), ""]
    lines += [VERDICT_HEAD, "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {verdict_cells(v)} |" for name, v in transfer.items()]
    note = ONE_SEED_NOTE if finetune_seeds == 1 else SEEDS_NOTE.format(seeds=finetune_seeds)
    lines += ["", note, "", PROBE_NOTE, "", "Per shot count (k-shot subsets, paired by seed):"]
    lines += ["", SHOT_HEAD, "|---|---|---|---|---|---|---|"]
    for name, by_shot in curve_verdicts.items():
        for shot, v in in_curve_order(by_shot).items():
            lines.append(f"| {name} | {shot} | {verdict_cells(v)} |")
    return lines


def evidence(v: dict) -> str:
    """A verdict in words with its numbers: gain, interval, level, test and p."""
    p = p_text(v["p"])
    p = "" if p == "-" else f", p{p}" if p.startswith("<") else f", p={p}"
    return (
        f"{100 * v['gain']:+.1f} points [{100 * v['low']:.1f}, {100 * v['high']:.1f}] "
        f"({100 * v['confidence']:g}% interval; {v['test']}{p})"
    )


def conclusions(verdicts: dict[str, dict]) -> list[str]:
    """One sentence per verdict: who beats whom, by how many points, and by which test."""
    sentences = []
    for name, v in verdicts.items():
        strategy, _, reference = name.partition("_vs_")
        if name in COMPARED:
            method, other = COMPARED[name]
        else:
            method = STRATEGY_NAMES.get(strategy, f"Strategy {strategy}")
            other = "training the same architecture from scratch"
        if v["verdict"] == "positive":
            sentences.append(f"{method} beats {other}: {evidence(v)}: positive.")
        elif v["verdict"] == "negative":
            sentences.append(f"{method} is worse than {other}: {evidence(v)}: negative transfer.")
        elif "note" in v:  # e.g. no pretrained weights: a gain, but not transfer
            sentences.append(f"{method} against {other}: {evidence(v)}; {v['note']}.")
        else:
            sentences.append(
                f"{method} is not distinguishable from {other}: {evidence(v)}, within the "
                "noise, so inconclusive."
            )
    return sentences


def to_html(markdown_text: str, root: Path) -> str:
    """The report as one self-contained HTML page: figures inlined, readable offline, in a
    mail attachment and in the MLflow UI alike."""
    import base64

    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])

    def inline(match: re.Match) -> str:
        path = root / match.group(1)
        if not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
        "img{max-width:100%}"
    )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>Transfer report</title>'
        f"<style>{style}</style></head><body>\n{body}\n</body></html>\n"
    )


def timing_lines(ran: dict[str, dict], cached: dict[str, dict]) -> list[str]:
    """One row per stage this run ran: its four parts, the total and the steady rate; then
    the stages DVC skipped, with when and where their times were measured."""
    lines = [
        "| stage | ready | first step | steady | write | total | steady items/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage, t in ran.items():
        rate = f"{t['steady_items_per_s']:.0f}" if t.get("steady_items_per_s") else ""
        lines.append(
            f"| {stage} | {t['ready_s']:.1f} | {t['first_step_s']:.1f} | {t['steady_s']:.1f} | "
            f"{t['write_s']:.1f} | {t['total_s']:.1f} | {rate} |"
        )
    if cached:
        listed = ", ".join(f"{stage} ({measured(t)})" for stage, t in cached.items())
        lines += ["", f"Cached: {CACHED_WORDS}: {listed}."]
    return lines


CACHED_WORDS = "not run by this `dvc repro` (their inputs were unchanged); measured earlier"


def measured(t: dict) -> str:
    """'3.5 s on host, 2026-11-29 14:02 UTC': when and where a stage's timing was measured."""
    import datetime

    when = datetime.datetime.fromtimestamp(t["started"], datetime.UTC)
    host = str(t.get("run", "an unknown host")).split(":")[0]
    return f"{t['total_s']:.1f} s on {host}, {when:%Y-%m-%d %H:%M} UTC"


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


def provenance_lines(provenance: dict) -> list[str]:
    """What produced these numbers, as a markdown list."""
    git, data, model = provenance["git"], provenance["data"], provenance["backbone"]
    seeds, device = provenance["seeds"], provenance["device"]
    dirty = {"true": " with uncommitted changes", "false": ""}.get(
        git["dirty"], " (dirty: unknown)"
    )
    images = ", ".join(f"{split} {count}" for split, count in data["images"].items())
    return [
        f"- code: git commit {git['commit']}{dirty}",
        f"- params: sha256 {provenance['params_sha256']}",
        f"- data: {data['source']} at {data['path']}; {images} images, {data['classes']} classes",
        f"- backbone: {model['name']}, weights {model['weights']}, input "
        f"{model['input_size']} px, {model['feature_dim']} features",
        "- seeds: " + ", ".join(f"{k} {v}" for k, v in seeds.items()),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in provenance["versions"].items()),
        f"- device: extraction on {device['extract']}; CPU {device['cpu']} "
        f"({device['machine']}, torch kernels {device['cpu_capability']})",
    ]
