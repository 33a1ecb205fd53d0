"""The evaluate stage's work: score every method's test predictions (metrics.py), judge
the run in families of verdicts (conclusions.py), recommend (recommend.py), gather the
timings, and write the DVC plot tables, the figures, the provenance record and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab import io, selection, timeline
from transferlab.data.layout import load_classes, load_prepared
from transferlab.evaluation.curves import kshot
from transferlab.evaluation.drivers import rank
from transferlab.evaluation.rendering import figures, report, tables, words
from transferlab.evaluation.scores import calibration
from transferlab.evaluation.scores.metrics import seed_metrics
from transferlab.evaluation.statistics import conclusions, recommend
from transferlab.params import Params
from transferlab.provenance import describe_run
from transferlab.timeline import StageClock

PROBE_METHODS = ("probe", "knn")
DATA_DIGEST = 12  # hex digits of the data's content digest in the headline


def timed_stages(params: Params) -> set[str]:
    """The names under which this pipeline's stages write their timings (stage_run's name):
    a timing file left by a stage no longer in the pipeline (a removed candidate) is not
    this run's and stays out of its timeline."""
    per_candidate = ("extract", "probe", "knn", "scores")
    return {
        "validate",
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


def trainable_parameters(method: str, folder: Path, record: dict | None) -> int:
    """What a method's training updates: the probe's head, nothing for kNN, and for a
    fine-tuned method what its training record counted."""
    if method == "probe":
        return int(sum(a.size for a in io.load_arrays(folder / io.HEAD_FILE).values()))
    if method == "knn":
        return 0
    return record["trainable_parameters"]


def recommendation(
    params: Params, chosen: str, seed_correct: dict[str, list[np.ndarray]], records: dict
) -> dict:
    """recommend.recommend over every method of the studied candidate, each costed by the
    parameters its training updates (deterministic: the recommendation reproduces)."""
    methods = []
    for name, correct in seed_correct.items():
        folder = io.method_dir(params.paths.methods, name, chosen)
        trainable = trainable_parameters(name, folder, records.get(name))
        methods.append(recommend.Method(name, correct, trainable))
    return recommend.recommend(methods, params.verdict, margin=params.recommend.margin)


def method_seconds(params: Params, chosen: str, timings: dict[str, dict]) -> dict[str, float]:
    """Each method's stages' wall time as measured (by this run or the one DVC cached them
    from), where every one of its stages has a timing: the report states it, never decides
    by it (it varies between runs)."""
    out = {}
    for method in method_names(params):
        stages = method_stages(params, method, chosen)
        if all(stage in timings for stage in stages):
            out[method] = round(sum(timings[stage]["total_s"] for stage in stages), 1)
    return out


def headline(metrics: dict, methods: list[str], card: dict) -> dict:
    """The few numbers `dvc metrics show` and `dvc exp show` compare (reports/headline.json):
    the recommended method, each method's test accuracy, and which data they were measured
    on (the source's content digest, shortened: DATA_DIGEST); the rest is in metrics.json."""
    return {
        "recommended": metrics["recommendation"]["method"],
        "accuracy": {method: metrics[method]["accuracy"] for method in methods},
        "data_content": card["content"][:DATA_DIGEST],
    }


def method_names(params: Params) -> list[str]:
    """Every method evaluated, in report order."""
    return [*PROBE_METHODS, *params.finetune.runs]


@dataclass
class Scored:
    """Every method's test scores on the studied candidate, and what the report draws."""

    metrics: dict[str, dict] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    seed_correct: dict[str, list[np.ndarray]] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)  # each fine-tuned method's record

    @property
    def histories(self) -> dict[str, list[dict]]:
        return {method: record["history"] for method, record in self.records.items()}


def score_methods(params: Params, chosen: str, labels: np.ndarray, classes) -> Scored:
    """Read each method's test predictions (every seed) and training record, and score them."""
    scored = Scored()
    for method in method_names(params):
        folder = io.method_dir(params.paths.methods, method, chosen)
        seeds = params.finetune.seeds if method in params.finetune.runs else 1
        seed_probs = [io.load_array(folder / io.predictions_file(i)) for i in range(seeds)]
        probs = seed_probs[0]  # the first seed's: confusion, per-class, reliability
        scored.predictions[method] = (labels, probs)
        scored.metrics[method] = seed_metrics(labels, seed_probs)
        scored.seed_correct[method] = [p.argmax(1) == labels for p in seed_probs]
        scored.per_class[method] = calibration.per_class_accuracy(labels, probs, classes)
        if method in params.finetune.runs:
            scored.records[method] = io.read_json(folder / io.RECORD_FILE)
    return scored


def read_curves(params: Params) -> tuple[dict[str, list[dict]], dict]:
    """(each curve stage's rows, with their per-test-image correctness: linear, knn and
    finetune; every curve's series, for the tables and the figure). Fine-tuned k-shot curves
    (curves.finetune) join the probe series in the table and PNG."""
    paths = params.paths
    folders = {probe: paths.curves / probe for probe in kshot.CURVE_PROBES}
    folders["finetune"] = paths.curves_finetune
    rows, series = {}, {}
    for name, folder in folders.items():
        rows[name] = kshot.read_rows(folder)
        series.update(kshot.read_summary(folder / kshot.SUMMARY_FILE)["series"])
    return rows, series


def judge(params: Params, chosen: str, scored: Scored, labels: np.ndarray) -> tuple:
    """Judge the run (conclusions.judge_run) into scored.metrics: the transfer verdicts, the
    backbones, and every verdict with its family. Returns the backbone comparison, every
    curve's series and the curves' verdicts, for the report."""
    curve_rows, curve_series = read_curves(params)
    record = io.read_json(params.paths.ranking)
    compared, correct = rank.with_finetuned(record, params, labels)
    judged = conclusions.judge_run(
        params,
        seed_correct=scored.seed_correct,
        curve_rows=curve_rows,
        compared=compared,
        correct=correct,
        transferred=params.model(chosen).pretrained,
    )
    compared["gaps"] = judged.gaps
    scored.metrics["transfer"] = judged.transfer
    scored.metrics["backbones"] = rank.metrics(compared)
    scored.metrics["verdicts"] = {
        "families": judged.families,
        "gaps": judged.gaps,
        "curves": judged.curves,
    }
    return compared, curve_series, judged.curves


def draw(params: Params, scored: Scored, compared: dict, curve_series: dict, classes) -> list[Path]:
    """The DVC plot tables and the PNGs but the timeline's; returns the report's figures."""
    paths = params.paths
    confusions = []
    for method, (labels, probs) in scored.predictions.items():
        rows = tables.confusion_rows(labels, probs, classes)
        io.write_text(paths.plots / "confusion" / f"{method}.csv", rows)
        confusions.append(paths.figures / f"confusion_{method}.png")
        figures.plot_confusion(labels, probs, classes, method, confusions[-1])
    for name, csv_text in tables.training_tables(scored.histories).items():
        io.write_text(paths.plots / name, csv_text)
    io.write_text(paths.plots / "backbones.csv", tables.table_csv(compared))
    figures.plot_cost(compared, paths.figures / figures.FIGURE_FILE)
    figures.plot_reliability(scored.predictions, paths.figures / "reliability.png")
    figures.plot_training(scored.histories, paths.figures / "training.png")
    train_labels = load_prepared(paths.prepared, "train").labels
    curves_png = paths.figures / kshot.FIGURE_FILE
    shots = kshot.usable_shots(params.curves.shots, train_labels)
    figures.plot_curves(curve_series, shots, train_labels, curves_png)
    return [
        paths.figures / figures.FIGURE_FILE,
        paths.figures / "timeline.png",
        curves_png,
        paths.figures / "training.png",
        paths.figures / "reliability.png",
        *confusions,
    ]


def evaluate(
    params: Params, *, git: dict[str, str], clock: StageClock
) -> tuple[dict, list[Path], dict, dict, str]:
    """Score every method's test predictions, judge transfer, recommend, gather the stages'
    timings, and write the DVC plot tables, the figures, per-class accuracies, the timeline,
    the provenance record and the report. Returns the metrics, the figures, the provenance,
    the backbone comparison and the recommendation in words (`git`: the code's commit and
    dirty flag; `clock`: this stage's, whose parts join the timeline)."""
    paths = params.paths
    chosen = selection.read_selection(paths).chosen  # the candidate studied in depth
    classes = load_classes(paths.prepared)
    labels = load_prepared(paths.prepared, "test").labels
    scored = score_methods(params, chosen, labels, classes)
    compared, curve_series, curve_verdicts = judge(params, chosen, scored, labels)
    metrics = scored.metrics
    pngs = draw(params, scored, compared, curve_series, classes)
    clock.computed()  # what follows is this stage's writing
    timings = timeline.gather(paths.timings, timed_stages(params), evaluate=clock.parts())
    metrics["recommendation"] = recommendation(params, chosen, scored.seed_correct, scored.records)
    seconds = method_seconds(params, chosen, timings)
    run = timeline.pipeline_key()
    ran, cached = timeline.split(timings, run)
    io.write_json(paths.timeline, timeline.records(timings, run))
    figures.plot_timeline(ran, cached, paths.figures / "timeline.png")
    card = io.read_json(paths.data_card)
    io.write_json(paths.metrics, metrics)
    io.write_json(paths.headline, headline(metrics, method_names(params), card))
    io.write_json(paths.figures / "per_class.json", scored.per_class)
    provenance = describe_run(
        params,
        git=git,
        data_card=card,
        extract_report=io.read_json(io.backbone_file(paths.extract_report, chosen)),
    )
    text = report.render(
        metrics=metrics,
        per_class=scored.per_class,
        curve_summary=curve_series,
        curve_verdicts=curve_verdicts,
        figures=pngs,
        root=paths.report.parent,
        provenance=provenance,
        finetune_seeds=params.finetune.seeds,
        training=scored.records,
        timings=(ran, cached),
        seconds=seconds,
        **described(params, chosen, compared, card),
    )
    io.write_json(paths.provenance, provenance)
    io.write_text(paths.report, text)
    io.write_text(paths.report_html, report.to_html(text, paths.report.parent))
    answer = words.recommendation_text(metrics["recommendation"], seconds)
    return metrics, pngs, provenance, compared, answer


def described(params: Params, chosen: str, compared: dict, card: dict) -> dict:
    """The report's sections on the backbones and the data (report.render's arguments)."""
    model, paths = params.model(chosen), params.paths
    return {
        "backbones": report.leaderboard(compared, params.finetune.runs),
        "backbone_conclusion": words.conclusion(compared),
        "studied": f"{chosen} ({model.name}, weights {model.weights})",
        "data": report.data_lines(
            card, io.read_json(paths.rejects), io.read_json(paths.duplicates)
        ),
        "warnings": card["resolution"]["warnings"],
    }
