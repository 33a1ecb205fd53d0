"""The markdown report and its self-contained HTML page: the sections in order, each a
list of lines; the sentences come from words.py, the figures from figures.py."""

from __future__ import annotations

import os
import re
from pathlib import Path

from transferlab import timeline
from transferlab.data.layout import SPLITS
from transferlab.evaluation.curves.kshot import in_curve_order
from transferlab.evaluation.rendering.words import (
    CACHED_WORDS,
    ONE_SEED_NOTE,
    PROBE_NOTE,
    RECOMMENDATION_RULE,
    SEEDS_NOTE,
    amount,
    conclusions,
    evidence,
    measured,
    outside_words,
    p_text,
    recommendation_text,
)

SUMMARY_KEYS = ("transfer", "backbones", "recommendation", "verdicts")  # not methods
RECOMMENDATION_HEAD = "## Recommendation"  # the report's first section: the answer


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
    seconds: dict[str, float] | None = None,
    data: list[str] | None = None,
    warnings: list[str] | None = None,
) -> str:
    """The markdown report; figures are linked relative to the report's folder.
    `backbones`: the comparison's markdown lines, `backbone_conclusion` its sentence;
    `studied`: the candidate the sections after it describe; `training`: each fine-tuned
    method's training record; `timings`: the stages this run ran, and those DVC cached;
    `seconds`: each method's measured time, stated beside the recommendation; `data`: the
    Data section's lines (data_lines), `warnings` its warnings, repeated under the answer."""
    methods = [m for m in metrics if m not in SUMMARY_KEYS]
    lines = ["# Transfer report", ""]
    if "recommendation" in metrics:
        answer = recommendation_text(metrics["recommendation"], seconds)
        lines += [RECOMMENDATION_HEAD, "", answer]
        lines += [f"\n**Caution** (see Data): {warning}" for warning in warnings or ()]
        lines += ["", RECOMMENDATION_RULE, ""]
    lines += ["## Conclusion", ""]
    if backbone_conclusion:
        lines.append(f"- {backbone_conclusion}")
    if studied:
        lines.append(f"- Studied in depth (fine-tuning, curves, verdicts): {studied}.")
    lines += [f"- {sentence}" for sentence in conclusions(metrics.get("transfer", {}))]
    lines += ["", *(data or []), *(backbones or [])]
    lines += ["## Test metrics", ""] if backbones else ["", "## Test metrics", ""]
    lines += metric_lines({m: metrics[m] for m in methods})
    families = metrics.get("verdicts", {}).get("families")
    lines += verdict_lines(metrics.get("transfer", {}), curve_verdicts, finetune_seeds, families)
    if training:
        lines += ["", "## How each method was fine-tuned", "", *training_lines(training)]
    lines += ["", "## Data efficiency (test accuracy, mean ± seed std)", ""]
    lines += curve_lines(curve_summary)
    lines += ["", "## Per-class accuracy", "", *per_class_lines(per_class)]
    lines += ["", "## Figures", ""]
    for figure in figures:
        lines.append(f"![{figure.stem}]({Path(os.path.relpath(figure, root)).as_posix()})")
    if timings:
        lines += ["", "## Where the time went (seconds)", ""] + timing_lines(*timings)
    if provenance:
        lines += ["", "## Provenance", ""] + provenance_lines(provenance)
    return "\n".join(lines) + "\n"


NAMED = 5  # files a Data section names per list; the rest are counted


def data_lines(card: dict, rejects: dict, duplicates: dict) -> list[str]:
    """The Data section: images per class and split, what the splits can decide, the files
    left out and why, and identical images (label conflicts, copies across splits)."""
    splits = {s: card["splits"][s] for s in SPLITS if s in card["splits"]}  # train, val, test
    lines = [
        "## Data",
        "",
        f"Source: {card['source']} (content sha256 {card['content'][:12]}), "
        f"{len(card['classes'])} classes, images stored at {card['image_shape'][0]} px.",
        "",
        "| class | " + " | ".join(splits) + " |",
        "|---" * (len(splits) + 1) + "|",
    ]
    for name in card["classes"]:
        lines.append(
            f"| {name} | " + " | ".join(str(splits[s]["per_class"][name]) for s in splits) + " |"
        )
    lines.append("| **total** | " + " | ".join(f"**{splits[s]['total']}**" for s in splits) + " |")
    lines += ["", *resolution_lines(card["resolution"])]
    lines += left_out_lines(rejects) + duplicate_lines(duplicates)
    return lines + [""]


def resolution_lines(resolution: dict) -> list[str]:
    """The smallest gain the test split can call significant, and each warning."""
    gain = resolution["smallest_significant_gain"]
    level = f"{100 * resolution['confidence']:g}%"
    least = "no gain at all" if gain is None else f"gains of {100 * gain:.1f} points or more"
    lines = [
        f"- What the test split can decide: with {resolution['test_images']} test images, "
        f"McNemar's exact test can call {least} significant at {level} (when no image goes "
        "the other way)."
    ]
    return lines + [f"- **Warning:** {warning}" for warning in resolution["warnings"]]


def named(items: list[str]) -> str:
    """The first NAMED items, then how many more."""
    shown = ", ".join(items[:NAMED])
    return shown + (f" and {len(items) - NAMED} more" if len(items) > NAMED else "")


def left_out_lines(rejects: dict) -> list[str]:
    """Files that could not be read, by reason; files never opened, by reason."""
    lines = []
    for kind, verb in (("rejected", "could not be read"), ("skipped", "were never opened")):
        by_reason: dict[str, list[str]] = {}
        for entry in rejects[kind]:
            by_reason.setdefault(entry["reason"], []).append(f"`{entry['file']}`")
        for reason, files in sorted(by_reason.items()):
            lines.append(f"- {len(files)} file(s) {verb} ({reason}): {named(files)}.")
    return lines or ["- Every listed file was read."]


def duplicate_lines(duplicates: dict) -> list[str]:
    """Groups of identical images: how many, label conflicts and copies across splits named,
    and what the policy did."""
    summary = duplicates["summary"]
    if not summary["groups"]:
        return ["- No two images are identical."]
    lines = [
        f"- {summary['groups']} group(s) of identical images (data.duplicates: "
        f"{duplicates['policy']}); {summary['dropped']} copies dropped."
    ]
    for flag, words in (("label_conflict", "under different labels"), ("leakage", "across splits")):
        groups = [g for g in duplicates["groups"] if g[flag]]
        if groups:
            members = [
                " = ".join(f"`{m['file']}` ({m['label']})" for m in g["members"]) for g in groups
            ]
            lines.append(f"- {len(groups)} group(s) {words}: {named(members)}.")
    return lines


def metric_lines(methods: dict[str, dict]) -> list[str]:
    """Each method's test accuracy (with its seed spread), macro-F1 and ECE."""
    lines = ["| method | accuracy | macro-F1 | ECE |", "|---|---|---|---|"]
    for m, v in methods.items():
        accuracy = f"{v['accuracy']:.4f}"
        if "accuracy_sd" in v:
            accuracy += f" ± {v['accuracy_sd']:.4f} ({v['seeds']} seeds)"
        lines.append(f"| {m} | {accuracy} | {v['macro_f1']:.4f} | {v['ece']:.4f} |")
    return lines


def curve_lines(curve_summary: dict) -> list[str]:
    """Each curve series' mean ± seed std test accuracy per shot count."""
    shots = list(in_curve_order(next(iter(curve_summary.values()), {})))
    lines = ["| series | " + " | ".join(shots) + " |", "|---" * (len(shots) + 1) + "|"]
    for series, cells in curve_summary.items():
        row = [f"{cells[s]['mean']:.3f} ± {cells[s]['std']:.3f}" for s in shots]
        lines.append(f"| {series} | " + " | ".join(row) + " |")
    return lines


def per_class_lines(per_class: dict[str, dict[str, float]]) -> list[str]:
    """Each class's recall, one column per method."""
    classes = list(next(iter(per_class.values()), {}))
    lines = ["| class | " + " | ".join(per_class) + " |", "|---" * (len(per_class) + 1) + "|"]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(f"{per_class[m][c]:.3f}" for m in per_class) + " |")
    return lines


def training_lines(records: dict[str, dict]) -> list[str]:
    """Per fine-tuned method: its learning rate, BatchNorm policy, trainable parameters, and
    val accuracy before the first update (epoch 0) and at its kept epoch; then, per method
    whose rate was searched, the rates tried, their val accuracies, the winner and what the
    search cost, and lora's adapter size. (Each method's time: the recommendation and
    "Where the time went".)"""
    lines = [
        "| method | peak lr | BatchNorm statistics | trainable parameters | val at epoch 0 "
        "| val kept (epoch) | epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for method, r in records.items():
        search = r.get("lr_search")
        lines.append(
            f"| {method} | {r['lr']:g}{' (chosen on val)' if search else ''} | {r['bn']} | "
            f"{amount(r.get('trainable_parameters'))} | {r['history'][0]['val_accuracy']:.4f} | "
            f"{r['val_accuracy']:.4f} ({r['kept_epoch']}) | {r['epochs_run']} |"
        )
        if search:
            notes.append(f"- {method}: {search_words(search)}")
        if "adapter_bytes" in r:
            notes.append(
                f"- {method}: its adapter (adapter weights and head), saved apart from the "
                f"backbone, takes {r['adapter_bytes'] / 1e6:.3g} MB on disk; the checkpoint "
                "holds it merged into the backbone, which made the test predictions."
            )
    tuned = any("lr_search" in r for r in records.values())
    closing = (
        "Learning rates were chosen on val from the listed rates (finetune.<strategy>.lr): "
        "each trained for the first finetune.search_epochs of the whole schedule, the best "
        "by val accuracy (of rates tied, the middle one in list order) then trained for the "
        "whole schedule; only that model predicted test."
        if tuned
        else "Learning rates were not tuned: each method ran at one rate "
        "(finetune.<strategy>.lr; give a list to choose on val)."
    )
    return [
        *lines,
        *([""] + notes if notes else []),
        "",
        closing + " BatchNorm 'frozen' keeps the loaded running statistics (affine parameters "
        "train where the method trains them); 'train' updates them on every batch.",
    ]


def search_words(search: dict) -> str:
    """'rates 0.001, 0.003 tried for 2 epochs each (val 0.8100, 0.8400); 0.003 won on val,
    then trained in full; the search cost 41 s, 4 epochs of training'."""
    rates = ", ".join(f"{row['lr']:g}" for row in search["tried"])
    scores = ", ".join(f"{row['val_accuracy']:.4f}" for row in search["tried"])
    after = "its search run kept" if search["in_full"] else "then trained in full"
    return (
        f"rates {rates} tried for {search['epochs_each']} epochs each (val {scores}); "
        f"{search['chosen']:g} won on val, {after}; the search cost {search['seconds']:.0f} s, "
        f"{search['epochs']} epochs of training."
    )


COLUMNS = "verdict | gain (points) | interval (points) | level | test | p | adjusted p |"
VERDICT_HEAD = f"| comparison | {COLUMNS}"
SHOT_HEAD = f"| comparison | shots | {COLUMNS}"


def verdict_cells(v: dict) -> str:
    """A verdict record's table cells: verdict (with, when inconclusive, the smallest gain
    this test could have decided), gain, interval, its level, test, raw and adjusted p."""
    low, high = 100 * v["low"], 100 * v["high"]
    shown = f"**{v['verdict']}**"
    if v["verdict"] == "inconclusive" and v.get("decidable"):
        shown += f" (decides ±{100 * v['decidable']:.1f})"
    return (
        f"{shown} | {100 * v['gain']:+.1f} | [{low:.1f}, {high:.1f}] | "
        f"{100 * v['level']:.4g}% | {v['test']} | {p_text(v['p'])} | {p_text(v['p_adjusted'])}"
    )


def verdict_intro(families: dict[str, dict], confidence: float | None) -> list[str]:
    """What the verdict tables hold: the gain, the families and how they were corrected."""
    level = f"{100 * confidence:g}%" if confidence else "verdict.confidence"
    adjusted = [f"{name} ({f['size']})" for name, f in families.items() if f["adjust"] == "holm"]
    lines = [
        "Gain: test accuracy of the method minus the reference's, in points, on the same "
        "test images. Positive or negative only when the interval excludes 0; a studied "
        "backbone without pretrained weights is never positive. '(decides ±x)': the smallest "
        "gain the same test, at this spread and level, could have told from 0.",
        "",
    ]
    if adjusted:
        return lines + [
            f"{sum(f['size'] for f in families.values())} comparisons in {len(families)} "
            f"families, each corrected by Holm's step-down method to {level} together: "
            + ", ".join(adjusted)
            + ". Adjusted p: Holm's; each interval is drawn at the "
            "level of the Holm step that decided it (the level column), so it excludes 0 "
            "exactly when the verdict is positive or negative."
        ]
    return lines + [f"No correction (verdict.adjust: none): each verdict at {level} alone."]


def verdict_lines(
    transfer: dict, curve_verdicts: dict, finetune_seeds: int, families: dict | None = None
) -> list[str]:
    """The report's verdict section: the headline verdicts, what noise they measured, and
    every curve comparison per shot count in curve order."""
    confidence = next((v["confidence"] for v in transfer.values()), None)
    intro = verdict_intro(families or {}, confidence)
    lines = ["", "## Transfer verdicts", "", *intro, ""]
    lines += [VERDICT_HEAD, "|---" * 8 + "|"]
    lines += [f"| {name} | {verdict_cells(v)} |" for name, v in transfer.items()]
    note = ONE_SEED_NOTE if finetune_seeds == 1 else SEEDS_NOTE.format(seeds=finetune_seeds)
    lines += ["", note, "", PROBE_NOTE, "", "Per shot count (k-shot subsets, paired by seed):"]
    lines += ["", SHOT_HEAD, "|---" * 9 + "|"]
    for name, by_shot in curve_verdicts.items():
        for shot, v in in_curve_order(by_shot).items():
            lines.append(f"| {name} | {shot} | {verdict_cells(v)} |")
    return lines


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
    if ran:
        lines += ["", outside_words(timeline.outside(ran))]
    if cached:
        listed = ", ".join(f"{stage} ({measured(t)})" for stage, t in cached.items())
        lines += ["", f"Cached: {CACHED_WORDS}: {listed}."]
    return lines


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


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def leaderboard(record: dict, strategies: tuple[str, ...]) -> list[str]:
    """Markdown lines: the ranked table, the best candidate and its gap, Kendall's tau."""
    return [*ranked_table(record, strategies), "", *gap_lines(record), "", *tau_lines(record)]


def ranked_table(record: dict, strategies: tuple[str, ...]) -> list[str]:
    """The section's head and one row per candidate, in ranked order."""
    rows = record["candidates"]
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
        f"Ranked by **{record['by']}** before fine-tuning (random-init candidates last, never "
        f"best); fine-tuned: {', '.join(record['selected'])}. Accuracies are on the test split; "
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
    return lines


def gap_lines(record: dict) -> list[str]:
    """The best candidate by each accuracy, and whether its gap is beyond the noise."""
    lines = []
    for accuracy, gap in record["gaps"].items():
        if gap is None:
            continue
        lines.append(
            f"- Best by {accuracy.replace('_', ' ')}: **{gap['best']}**, "
            f"{gap['gain']:+.4f} over {gap['runner_up']}: "
            f"{'beyond the noise' if gap['verdict'] == 'positive' else 'within the noise'} "
            f"({evidence(gap)})."
        )
    if not any(record["gaps"].values()):
        lines.append("- Fewer than two pretrained candidates: no best to name.")
    return lines


def tau_lines(record: dict) -> list[str]:
    """Kendall's tau between each score and each measured accuracy, and what it can say."""
    lines = ["Kendall's tau between each score and the measured accuracies:", ""]
    accuracies = list(next(iter(record["agreement"].values())))
    lines.append("| score | " + " | ".join(a.replace("_", " ") for a in accuracies) + " |")
    lines.append("|" + "---|" * (len(accuracies) + 1))
    for score, taus in record["agreement"].items():
        cells = [_number(taus[a], 2) for a in accuracies]
        lines.append(f"| {score} | " + " | ".join(cells) + " |")
    n = len(record["candidates"])
    lines += [
        "",
        f"Over {n} candidates tau takes only {n * (n - 1) // 2 + 1} values; it says whether the "
        "ranking held here, not whether it holds in general. '-': fewer than two candidates "
        "measured, or a tie throughout.",
        "",
    ]
    return lines
