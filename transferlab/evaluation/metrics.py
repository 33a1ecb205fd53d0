"""Test metrics per method, the transfer verdicts, and the DVC plot tables."""

from __future__ import annotations

import csv
import io as text_io
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from transferlab import io, selection, timeline
from transferlab.data.prepared import load_classes, load_prepared
from transferlab.evaluation import (
    calibration,
    comparison,
    figures,
    kshot,
    recommend,
    report,
    tables,
    verdict,
    words,
)
from transferlab.params import BASELINE, Params
from transferlab.provenance import describe_run
from transferlab.timeline import StageClock

PROBE_METHODS = ("probe", "knn")
HEADLINE_PROBES = ("linear", "knn")


def timed_stages(params: Params) -> set[str]:
    """The names under which this pipeline's stages write their timings (stage_run's name):
    a timing file left by a stage no longer in the pipeline (a removed candidate) is not
    this run's and stays out of its timeline."""
    per_candidate = ("extract", "probe", "knn", "scores")
    return {
        "prepare",
        "rank",
        "extract_random",
        "curves_linear",
        "curves_knn",
        "curves_finetune",
        *(f"{stage}@{key}" for stage in per_candidate for key in params.backbones),
        *(params.finetune.stage(strategy) for strategy in params.finetune.runs),
    }


def method_stages(params: Params, method: str, chosen: str) -> list[str]:
    """The stages whose wall time a method of the studied candidate costs: the extraction
    its features (or its probe head) come from, then its own."""
    extract = f"extract@{chosen}"
    if method in PROBE_METHODS:
        return [extract, f"{method}@{chosen}"]
    own = params.finetune.stage(method)
    return [extract, f"probe@{chosen}", own] if method in params.finetune.from_probe else [own]


def trainable_parameters(method: str, folder: Path, record: dict | None) -> int | None:
    """What a method's training updates: the probe's head, nothing for kNN, and for a
    fine-tuned method what its training record counted."""
    if method == "probe":
        return int(sum(a.size for a in io.load_arrays(folder / io.HEAD_FILE).values()))
    if method == "knn":
        return 0
    return (record or {}).get("trainable_parameters")


def recommendation(
    params: Params,
    chosen: str,
    seed_correct: dict[str, list[np.ndarray]],
    timings: dict[str, dict],
    records: dict[str, dict],
) -> dict:
    """recommend.recommend over every method of the studied candidate, each costed by its
    stages' wall time (as measured, by this run or the one DVC cached it from)."""
    methods = []
    for name, correct in seed_correct.items():
        stages = method_stages(params, name, chosen)
        seconds = None
        if all(stage in timings for stage in stages):
            seconds = round(sum(timings[stage]["total_s"] for stage in stages), 1)
        folder = io.method_dir(params.paths.methods, name, chosen)
        trainable = trainable_parameters(name, folder, records.get(name))
        methods.append(recommend.Method(name, correct, seconds, trainable))
    return recommend.recommend(methods, params.verdict)


def headline(metrics: dict, methods: list[str]) -> dict:
    """The few numbers `dvc metrics show` and `dvc exp show` compare (reports/headline.json):
    the recommended method and each method's test accuracy; the rest is in metrics.json."""
    return {
        "recommended": metrics["recommendation"]["method"],
        "accuracy": {method: metrics[method]["accuracy"] for method in methods},
    }


def method_names(params: Params) -> list[str]:
    """Every method evaluated, in report order."""
    return [*PROBE_METHODS, *params.finetune.runs]


def method_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 from sklearn, and expected calibration error."""
    predicted = probs.argmax(1)
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 6),
        "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 6),
        "ece": round(calibration.expected_calibration_error(labels, probs), 6),
    }


def confusion_rows(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> str:
    """CSV of (actual, predicted) class names, the input of DVC's confusion template."""
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    for actual, predicted in zip(labels, probs.argmax(1), strict=True):
        writer.writerow([classes[actual], classes[predicted]])
    return buffer.getvalue()


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


def transfer_verdicts(
    seed_correct: dict[str, list[np.ndarray]],
    curves: dict,
    params: Params,
    *,
    transferred: bool,
) -> dict[str, dict]:
    """Each strategy against scratch on their test predictions, paired by training seed
    (one seed: McNemar's exact test; more: a t over seeds), and the probes against the
    references at the curves' largest shot. `seed_correct`: each fine-tuned method's
    per-test-image correctness per seed; `curves`: the probe curves' summaries, as
    kshot.read_summary returns them; `transferred`: the studied backbone has weights."""
    out: dict[str, dict] = {}
    if BASELINE in params.finetune.strategies:
        for strategy in params.finetune.runs:
            if strategy != BASELINE:
                out[f"{strategy}_vs_{BASELINE}"] = verdict.judge(
                    seed_correct[strategy],
                    seed_correct[BASELINE],
                    config=params.verdict,
                    transferred=transferred,
                )
    for probe in HEADLINE_PROBES:
        for reference in ("random_init", "raw_pixels"):
            name = f"{probe}_vs_{reference}"
            out[name] = kshot.headline(curves["comparisons"][name])
    return out


def evaluate(
    params: Params, *, git: dict[str, str], clock: StageClock
) -> tuple[dict, list[Path], dict, dict]:
    """Score every method's test predictions, judge transfer, gather the stages' timings, and
    write the DVC plot tables, the figures, per-class accuracies, the timeline, the provenance
    record and the report. Returns the metrics, the figures, the provenance and the backbone
    comparison (`git`: the
    code's commit and dirty flag; `clock`: this stage's, whose parts join the timeline)."""
    paths = params.paths
    chosen = selection.read_selection(paths).chosen  # the candidate studied in depth
    model = params.model(chosen)
    provenance = describe_run(
        params,
        git=git,
        data_card=io.read_json(paths.data_card),
        extract_report=io.read_json(io.backbone_file(paths.extract_report, chosen)),
    )
    classes = load_classes(paths.prepared)
    labels = load_prepared(paths.prepared, "test").labels
    probe_curves = {"series": {}, "comparisons": {}}  # the linear and kNN curves together
    for probe in kshot.CURVE_PROBES:
        curve = kshot.read_summary(paths.curves / probe / kshot.SUMMARY_FILE)
        probe_curves["series"].update(curve["series"])
        probe_curves["comparisons"].update(curve["comparisons"])
    # Fine-tuned k-shot curves (curves.finetune) join the probe series in the table and PNG,
    # and their per-shot verdicts against scratch join the probes'.
    finetuned = kshot.read_summary(paths.curves_finetune / kshot.SUMMARY_FILE)
    curve_series = {**probe_curves["series"], **finetuned["series"]}
    curve_verdicts = {**probe_curves["comparisons"], **finetuned["comparisons"]}
    metrics: dict[str, dict] = {}
    per_class: dict[str, dict[str, float]] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    histories: dict[str, list[dict]] = {}
    records: dict[str, dict] = {}  # each fine-tuned method's training record
    confusions = []
    seed_correct: dict[str, list[np.ndarray]] = {}
    for method in method_names(params):
        folder = io.method_dir(paths.methods, method, chosen)
        seeds = params.finetune.seeds if method in params.finetune.runs else 1
        seed_probs = [io.load_array(folder / io.predictions_file(i)) for i in range(seeds)]
        probs = seed_probs[0]  # the first seed's: confusion, per-class, reliability
        predictions[method] = (labels, probs)
        metrics[method] = seed_metrics(labels, seed_probs)
        seed_correct[method] = [p.argmax(1) == labels for p in seed_probs]
        per_class[method] = calibration.per_class_accuracy(labels, probs, classes)
        io.write_text(
            paths.plots / "confusion" / f"{method}.csv", confusion_rows(labels, probs, classes)
        )
        figure = paths.figures / f"confusion_{method}.png"
        figures.plot_confusion(labels, probs, classes, method, figure)
        confusions.append(figure)
        if method in params.finetune.runs:
            records[method] = io.read_json(folder / io.RECORD_FILE)
            histories[method] = records[method]["history"]
    for name, csv_text in tables.training_tables(histories).items():  # every method in each
        io.write_text(paths.plots / name, csv_text)
    metrics["transfer"] = transfer_verdicts(
        seed_correct, probe_curves, params, transferred=model.pretrained
    )
    compared = comparison.with_finetuned(io.read_json(paths.ranking), params, labels)
    metrics["backbones"] = comparison.metrics(compared)
    io.write_text(paths.plots / "backbones.csv", tables.table_csv(compared))
    figures.plot_cost(compared, paths.figures / figures.FIGURE_FILE)
    figures.plot_reliability(predictions, paths.figures / "reliability.png")
    figures.plot_training(histories, paths.figures / "training.png")
    pngs = [
        paths.figures / figures.FIGURE_FILE,
        paths.figures / "timeline.png",
        paths.figures / kshot.FIGURE_FILE,
        paths.figures / "training.png",
        paths.figures / "reliability.png",
        *confusions,
    ]
    train_labels = load_prepared(paths.prepared, "train").labels
    figures.plot_curves(curve_series, params.curves.shots, train_labels, pngs[2])
    clock.computed()  # what follows is this stage's writing
    timings = timeline.gather(paths.timings, timed_stages(params), evaluate=clock.parts())
    metrics["recommendation"] = recommendation(params, chosen, seed_correct, timings, records)
    run = timeline.pipeline_key()
    ran, cached = timeline.split(timings, run)
    io.write_json(paths.timeline, timeline.records(timings, run))
    figures.plot_timeline(ran, cached, paths.figures / "timeline.png")
    io.write_json(paths.metrics, metrics)
    io.write_json(paths.headline, headline(metrics, method_names(params)))
    io.write_json(paths.figures / "per_class.json", per_class)
    text = report.render(
        metrics=metrics,
        per_class=per_class,
        curve_summary=curve_series,
        curve_verdicts=curve_verdicts,
        figures=pngs,
        root=paths.report.parent,
        provenance=provenance,
        finetune_seeds=params.finetune.seeds,
        training=records,
        timings=(ran, cached),
        backbones=report.leaderboard(compared, params.finetune.runs),
        backbone_conclusion=words.conclusion(compared),
        studied=f"{chosen} ({model.name}, weights {model.weights})",
    )
    io.write_json(paths.provenance, provenance)
    io.write_text(paths.report, text)
    io.write_text(paths.report_html, report.to_html(text, paths.report.parent))
    return metrics, pngs, provenance, compared
