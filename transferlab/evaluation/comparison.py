"""The backbone comparison: one row per candidate from its stages' outputs, the ranking the
rank stage writes, and, after fine-tuning, the leaderboard (table, PNG, DVC plot table)."""

from __future__ import annotations

import csv
import io as text_io
from pathlib import Path

import numpy as np

from transferlab import io
from transferlab.evaluation import ranking, report, verdict
from transferlab.params import BASELINE, Params, Verdict

PROBES = ("probe", "knn")
PROBE_ACCURACIES = tuple(f"{probe}_accuracy" for probe in PROBES)
PROBE_NAMES = {"probe_accuracy": "linear probe", "knn_accuracy": "kNN"}  # the plots' legend
FIGURE_FILE = "backbones.png"
# Per accuracy column, per candidate: each seed's per-test-image correctness behind it.
Correct = dict[str, dict[str, list[np.ndarray]]]


def correct_in(folder: Path, labels: np.ndarray, seed_index: int = 0) -> np.ndarray:
    """Per test image, whether the predictions a method wrote in `folder` are right."""
    return io.load_array(folder / io.predictions_file(seed_index)).argmax(1) == labels


def accuracy_in(folder: Path, labels: np.ndarray, seed_index: int = 0) -> float:
    """Test accuracy of the predictions a method wrote in `folder`."""
    return round(float(correct_in(folder, labels, seed_index).mean()), 6)


def method_correct(
    params: Params, labels: np.ndarray, method: str, keys: list[str], seeds: int = 1
) -> dict[str, list[np.ndarray]]:
    """Per candidate in `keys`, each seed's test correctness of `method`."""
    return {
        key: [
            correct_in(io.method_dir(params.paths.methods, method, key), labels, i)
            for i in range(seeds)
        ]
        for key in keys
    }


def candidate_rows(params: Params, test_labels: np.ndarray) -> dict[str, dict]:
    """What the per-candidate stages measured, one row per candidate in params order."""
    paths, rows = params.paths, {}
    for key in params.backbones:
        model = params.model(key)
        extract = io.read_json(io.backbone_file(paths.extract_report, key))
        scores = io.read_json(io.backbone_file(paths.scores, key))
        row = {
            "model": model.name,
            "weights": model.weights,
            "pretrained": model.pretrained,
            "parameters": extract["parameters"],
            "feature_dim": extract["feature_dim"],
            "input_size": extract["input_size"],
            "images_per_s": extract["images_per_s"],
            "extract_device": extract["device"],
            **{name: scores[name] for name in ranking.SCORE_FIELDS},
        }
        for probe in PROBES:
            folder = io.method_dir(paths.methods, probe, key)
            row[f"{probe}_val_accuracy"] = io.read_json(folder / io.RECORD_FILE)["val_accuracy"]
            row[f"{probe}_accuracy"] = accuracy_in(folder, test_labels)
        rows[key] = row
    return rows


def rank_candidates(params: Params, test_labels: np.ndarray) -> dict:
    """The rank stage's record: every candidate's row, the ranking, the choice, and how well
    each score agreed with the probes' test accuracies."""
    rows = candidate_rows(params, test_labels)
    order = ranking.rank(rows, params.select.by)
    chosen = ranking.choose(order, top_k=params.select.top_k, explicit=params.select.backbones)
    return {
        "by": params.select.by,
        "order": order,
        "selected": chosen,
        "candidates": rows,
        **judged(rows, probe_correct(params, test_labels), config=params.verdict),
    }


def probe_correct(params: Params, test_labels: np.ndarray) -> Correct:
    """Every candidate's probe and kNN test correctness, by accuracy column."""
    keys = list(params.backbones)
    return {
        column: method_correct(params, test_labels, probe, keys)
        for probe, column in zip(PROBES, PROBE_ACCURACIES, strict=True)
    }


def judged(rows: dict[str, dict], correct: Correct, *, config: Verdict) -> dict:
    """Kendall's tau of each score against each accuracy in `correct`, and the
    best-vs-runner-up gaps judged on the correctness behind them."""
    return {
        "agreement": ranking.rank_agreement(rows, list(correct)),
        "gaps": {
            accuracy: ranking.gap(rows, accuracy, correct=by_key, config=config)
            for accuracy, by_key in correct.items()
        },
    }


def with_finetuned(record: dict, params: Params, test_labels: np.ndarray) -> dict:
    """The rank record with each chosen candidate's fine-tuned test accuracies (first seed's
    and, over several seeds, their mean) and the judgements redone with them."""
    rows = {key: dict(row) for key, row in record["candidates"].items()}
    correct = probe_correct(params, test_labels)
    for strategy in params.finetune.runs:
        column = f"{strategy}_accuracy"
        seeds = method_correct(
            params, test_labels, strategy, record["selected"], params.finetune.seeds
        )
        for key, by_seed in seeds.items():
            rows[key][column] = round(float(np.mean([c.mean() for c in by_seed])), 6)
        if strategy != BASELINE:  # scratch starts from no weights: nothing to rank it by
            correct[column] = seeds
    out = {**record, "candidates": rows}
    out.update(judged(rows, correct, config=params.verdict))
    out["intervals"] = probe_intervals(correct, config=params.verdict)
    return out


def probe_intervals(correct: Correct, *, config: Verdict) -> dict:
    """Per probe accuracy column, per candidate: [low, high] of its test accuracy at
    config.confidence (one fit: the exact Clopper-Pearson interval on the test images), and
    that confidence. The plots draw them as error bars, so that a spread between candidates
    inside the test set's sampling noise does not look like a difference."""
    out: dict = {"confidence": config.confidence}
    for column in PROBE_ACCURACIES:
        out[column] = {}
        for key, fits in correct[column].items():
            _, low, high = verdict.accuracy_interval(fits, confidence=config.confidence)
            out[column][key] = [round(low, 6), round(high, 6)]
    return out


def conclusion(record: dict) -> str:
    """One sentence for the report's conclusion: the pick, the best by probe accuracy, and
    whether its gap to the runner-up is beyond the noise, with the test and its interval."""
    pick = f"{record['by']} ranked {' > '.join(record['order'])}"
    gap = record["gaps"].get("probe_accuracy")
    if gap is None:
        return f"Backbones: {pick}; fewer than two pretrained candidates, so no best to name."
    beyond = gap["verdict"] == "positive"
    return (
        f"Backbones: {pick}. By linear-probe test accuracy {gap['best']} is best, "
        f"{report.evidence(gap)} against {gap['runner_up']}: "
        + ("beyond the noise." if beyond else "within the noise, so not distinguishable.")
    )


# Properties of the machine or of the input, not of the result: a rerun elsewhere would
# change them, so they stay out of the DVC metrics (they are in the ranking and the report).
NOT_METRICS = ("images_per_s", "input_size")


def metrics(record: dict) -> dict[str, dict[str, float]]:
    """Per candidate, the numbers `dvc exp show` and `dvc metrics diff` compare: scores,
    accuracies, size and feature width."""
    return {
        key: {
            k: v
            for k, v in row.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in NOT_METRICS
        }
        for key, row in record["candidates"].items()
    }


def table_csv(record: dict) -> str:
    """One row per candidate, ranked: the DVC plot of accuracy against extraction cost, each
    accuracy followed by its interval's <column>_low and <column>_high (template
    .dvc/plots/backbones.json colours each point by its backbone and draws the interval)."""
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    bounds = [(c, f"{c}_low", f"{c}_high") for c in PROBE_ACCURACIES]
    writer.writerow(["backbone", "ms_per_image", *[name for names in bounds for name in names]])
    for key in record["order"]:
        row = record["candidates"][key]
        cost = round(1000 / row["images_per_s"], 3)
        cells = [[row[c], *record["intervals"][c][key]] for c in PROBE_ACCURACIES]
        writer.writerow([key, cost, *[cell for triple in cells for cell in triple]])
    return buffer.getvalue()


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def leaderboard(record: dict, strategies: tuple[str, ...]) -> list[str]:
    """Markdown lines: the ranked table, the best candidate and its gap, Kendall's tau."""
    rows, by = record["candidates"], record["by"]
    tuned = [s for s in strategies if any(f"{s}_accuracy" in row for row in rows.values())]
    head = [
        "rank",
        "backbone",
        "weights",
        "params (M)",
        "dim",
        "ms / image",
        "LogME",
        "H-score",
        "probe acc.",
        "kNN acc.",
        *[f"{s} acc." for s in tuned],
    ]
    lines = [
        "## Backbones",
        "",
        f"Ranked by **{by}** before fine-tuning (random-init candidates last, never best); "
        f"fine-tuned: {', '.join(record['selected'])}. Accuracies are on the test split; "
        "ms / image is the extraction cost measured on this run's device.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for place, key in enumerate(record["order"], 1):
        row = rows[key]
        cells = [
            str(place),
            f"{key} ({row['model']})",
            row["weights"],
            f"{row['parameters'] / 1e6:.2f}",
            str(row["feature_dim"]),
            f"{1000 / row['images_per_s']:.2f}",
            _number(row["logme"]),
            _number(row["hscore"], 2),
            _number(row["probe_accuracy"]),
            _number(row["knn_accuracy"]),
            *[_number(row.get(f"{s}_accuracy")) for s in tuned],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for accuracy, gap in record["gaps"].items():
        if gap is None:
            continue
        lines.append(
            f"- Best by {accuracy.replace('_', ' ')}: **{gap['best']}**, "
            f"{gap['gain']:+.4f} over {gap['runner_up']}: "
            f"{'beyond the noise' if gap['verdict'] == 'positive' else 'within the noise'} "
            f"({report.evidence(gap)})."
        )
    if not any(record["gaps"].values()):
        lines.append("- Fewer than two pretrained candidates: no best to name.")
    lines += ["", "Kendall's tau between each score and the measured accuracies:", ""]
    accuracies = list(next(iter(record["agreement"].values())))
    lines.append("| score | " + " | ".join(a.replace("_", " ") for a in accuracies) + " |")
    lines.append("|" + "---|" * (len(accuracies) + 1))
    for score, taus in record["agreement"].items():
        cells = [_number(taus[a], 2) for a in accuracies]
        lines.append(f"| {score} | " + " | ".join(cells) + " |")
    n = len(rows)
    lines += [
        "",
        f"Over {n} candidates tau takes only {n * (n - 1) // 2 + 1} values; it says whether the "
        "ranking held here, not whether it holds in general. '-': fewer than two candidates "
        "measured, or a tie throughout.",
        "",
    ]
    return lines


def plot_cost(record: dict, path: Path) -> None:
    """PNG: probe and kNN test accuracy against extraction cost (ms per image), a colour per
    candidate and a marker per probe, each with its interval as an error bar. The y axis
    spans the intervals, not the points alone, and legends name the candidates, where
    labels beside the points collided."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation

    plt = report.figure()
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = dict(zip(PROBE_ACCURACIES, ("o", "s"), strict=True))
    for place, key in enumerate(record["order"]):
        row, colour = record["candidates"][key], colours[place % len(colours)]
        cost = 1000 / row["images_per_s"]
        for column, shift in zip(PROBE_ACCURACIES, (-4, 4), strict=True):
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
        Line2D([], [], color="0.3", marker=markers[c], ls="", label=PROBE_NAMES[c])
        for c in PROBE_ACCURACIES
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
    report.save_figure(fig, path)
