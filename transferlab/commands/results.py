"""What an experiment concluded and where its time went, in one screen:

    python -m transferlab.commands.results [REV] [--baseline REV]     (make results [EXP=name])

REV is the workspace by default, else a git revision or a `dvc exp` name. First the
recommendation, then the params that differ from the baseline (HEAD by default: what this
workspace changed since the last commit), each method's metrics, the transfer verdicts (a
flipped one marked), the candidate backbones and the per-stage times, each with its change
against the baseline. A stage time is compared only where both runs ran that stage: one
that DVC skipped (cached) shows when it was measured instead. Lines fit 120 columns.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import yaml

from transferlab.errors import UserError
from transferlab.evaluation.rendering.report import RECOMMENDATION_HEAD, SUMMARY_KEYS
from transferlab.evaluation.rendering.words import measured, recommendation_text
from transferlab.params import PARAMS_FILE, Paths, load_params
from transferlab.shell import cli
from transferlab.tracking import flatten

WIDTH = 120
QUALITY = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("ece", "ECE"))
PARTS = ("ready_s", "first_step_s", "steady_s", "write_s")


def read_reports(rev: str | None, paths: Paths, *, answer: bool = False) -> dict[str, dict]:
    """metrics.json, timeline.json, provenance.json, params.yaml and (`answer`) the report's
    answer with its measured times, of the workspace (rev None) or of a revision or
    experiment; {} for a file that revision does not have."""
    found = {}
    files = [
        ("metrics", paths.metrics),
        ("timeline", paths.timeline),
        ("provenance", paths.provenance),
        ("params", PARAMS_FILE),
    ]
    report = paths.report if answer else None
    for name, path in files + ([("report", report)] if report else []):
        try:
            found[name] = _parse(name, _read(rev, Path(path)))
        except FileNotFoundError:
            found[name] = {}
        except Exception as err:  # dvc's: a path that revision lacks, or an unknown revision
            if type(err).__name__ == "PathMissingError":
                found[name] = {}
                continue
            if rev is None:
                raise
            raise UserError(f"cannot read {path} at {rev!r}: {str(err).splitlines()[0]}") from None
    return found


def _read(rev: str | None, path: Path) -> str:
    if rev is None:
        return path.read_text()
    import dvc.api  # only for other revisions: the workspace needs no dvc

    return dvc.api.read(str(path), rev=rev)


def _parse(name: str, text: str) -> dict:
    if name == "params":
        return flatten(yaml.safe_load(text) or {})
    if name == "report":  # the paragraph under "## Recommendation", as evaluate wrote it
        _, found, rest = text.partition(f"{RECOMMENDATION_HEAD}\n\n")
        return {"answer": rest.split("\n", 1)[0]} if found else {}
    found = json.loads(text)
    if name == "timeline":  # a list in start order: one record per stage
        return {t["stage"]: t for t in found}
    return found


def other_data(current: dict, baseline: dict) -> str | None:
    """Why the two runs' numbers cannot be compared: the data they were measured on differ
    (source, path, or the source's content digest where both runs recorded one); None when
    they are the same data, or when either run has no provenance to tell."""
    ours, theirs = (run.get("provenance", {}).get("data") for run in (current, baseline))
    if not ours or not theirs:
        return None
    keys = ["source", "path"] + [k for k in ("content_sha256",) if k in ours and k in theirs]
    if all(ours[k] == theirs[k] for k in keys):
        return None
    digest = theirs.get("content_sha256", "")[:12]
    return f"{theirs['source']} at {theirs['path']}" + (f", content {digest}" if digest else "")


def _delta(value: float | None, base: float | None, scale: float = 1.0, unit: str = "") -> str:
    if value is None or base is None:
        return ""
    return f" ({(value - base) * scale:+.1f}{unit})"


def param_lines(params: dict, base: dict) -> list[str]:
    """'knn.k: 20 -> 5' for every param that differs from the baseline's."""
    changed = [k for k in sorted({*params, *base}) if params.get(k) != base.get(k)]
    lines = []
    for key in changed:
        before, after = (json.dumps(p[key]) if key in p else "(absent)" for p in (base, params))
        lines.append(clip(f"  {key}: {before} -> {after}"))
    return lines or ["  (none)"]


def method_lines(metrics: dict, base: dict) -> list[str]:
    """Each method's test accuracy, macro-F1 and ECE, with their changes in points."""
    lines = [f"{'method':<10} " + " ".join(f"{label:<24}" for _, label in QUALITY).rstrip()]
    for method, v in metrics.items():
        if method in SUMMARY_KEYS:
            continue
        old = base.get(method, {})
        cells = []
        for key, _ in QUALITY:
            spread = f"±{v['accuracy_sd']:.4f}" if key == "accuracy" and "accuracy_sd" in v else ""
            cells.append(f"{v[key]:.4f}{spread}{_delta(v[key], old.get(key), 100, ' pt')}")
        lines.append(f"{method:<10} " + " ".join(f"{c:<24}" for c in cells).rstrip())
    return lines


def verdict_lines(verdicts: dict, base: dict) -> list[str]:
    """Each verdict with its gain; one that differs from the baseline's is marked '!'."""
    lines = [f"{'verdict':<24} {'result':<28} gain (points)"]
    for name, v in verdicts.items():
        old = base.get(name, {})
        result = v["verdict"]
        if old.get("verdict") not in (None, result):
            result = f"{result} (was {old['verdict']}) !"
        gain = f"{v['gain'] * 100:+.1f}{_delta(v['gain'], old.get('gain'), 100)}"
        lines.append(f"{name:<24} {result:<28} {gain}")
    return lines


def backbone_lines(backbones: dict, base: dict) -> list[str]:
    """Each candidate's probe and kNN accuracy, LogME and H-score."""
    lines = [f"{'backbone':<14} {'probe':<18} {'kNN':<18} {'LogME':<9} H-score"]
    for key, v in backbones.items():
        old = base.get(key, {})
        cells = [
            f"{v[m]:.4f}{_delta(v[m], old.get(m), 100, ' pt')}"
            for m in ("probe_accuracy", "knn_accuracy")
        ]
        lines.append(
            f"{key:<14} {cells[0]:<18} {cells[1]:<18} {v['logme']:<9.4f} {v['hscore']:.2f}"
        )
    return lines


def stage_lines(timeline: dict, base: dict) -> list[str]:
    """Each stage's seconds and parts; a change only where both runs ran the stage."""
    lines = [f"{'stage':<26} {'seconds':<16} ready / first step / steady / write (s)"]
    for stage, t in timeline.items():
        if t.get("cached"):
            lines.append(clip(f"{stage:<26} cached, measured earlier: {measured(t)}"))
            continue
        old = base.get(stage, {})
        ran_both = t.get("cached") is False and old.get("cached") is False  # older: unknown
        total = f"{t['total_s']:.1f}" + (
            _delta(t["total_s"], old["total_s"], unit=" s") if ran_both else ""
        )
        parts = " / ".join(f"{t[p]:.1f}" for p in PARTS)
        lines.append(f"{stage:<26} {total:<16} {parts}")
    return lines


def clip(line: str) -> str:
    """The line, cut to WIDTH characters with a visible ellipsis."""
    return line if len(line) <= WIDTH else line[: WIDTH - 3] + "..."


def render(current: dict, baseline: dict, name: str, baseline_name: str | None) -> str:
    """The summary as text: recommendation, param changes, methods, verdicts, backbones and
    stage times, with changes against the baseline where it has them."""
    metrics, base_metrics = current["metrics"], baseline.get("metrics", {})
    if not metrics:
        raise UserError(f"{name} has no reports/metrics.json yet: run `dvc repro` first.")
    against = f", change against {baseline_name} in brackets" if baseline_name else ""
    lines = [f"{name}{against}", ""]
    if "recommendation" in metrics:
        text = current.get("report", {}).get("answer")
        text = text or recommendation_text(metrics["recommendation"])  # without the times
        lines += [*textwrap.wrap(text, WIDTH), ""]
    if baseline_name:
        params = param_lines(current.get("params", {}), baseline.get("params", {}))
        lines += [f"params changed against {baseline_name}:", *params, ""]
    lines += [*method_lines(metrics, base_metrics), ""]
    lines += verdict_lines(metrics.get("transfer", {}), base_metrics.get("transfer", {}))
    if metrics.get("backbones"):
        lines += ["", *backbone_lines(metrics["backbones"], base_metrics.get("backbones", {}))]
    if current["timeline"]:
        lines += ["", *stage_lines(current["timeline"], baseline.get("timeline", {}))]
    return "\n".join(lines)


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.commands.results", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "rev", nargs="?", help="a git revision or dvc exp name (default: workspace)"
    )
    parser.add_argument("--baseline", default="HEAD", help="what to compare with (default: HEAD)")
    args = parser.parse_args(argv)
    paths = load_params(PARAMS_FILE).paths
    current = read_reports(args.rev, paths, answer=True)
    baseline = {}
    if args.baseline and args.baseline != args.rev:
        try:
            baseline = read_reports(args.baseline, paths)
        except UserError as err:
            print(f"(no baseline: {err})", file=sys.stderr)
    name = args.rev or "workspace"
    other = other_data(current, baseline)
    if other:  # numbers on other data are no baseline: say so once, show no changes
        print(f"(no changes shown: the baseline {args.baseline} used other data: {other})")
        baseline = {}
    print(render(current, baseline, name, args.baseline if baseline.get("metrics") else None))


if __name__ == "__main__":
    main()
