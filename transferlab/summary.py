"""What an experiment concluded and where its time went, in one screen:

    python -m transferlab.summary [REV] [--baseline REV]     (make results [EXP=name])

REV is the workspace by default, else a git revision or a `dvc exp` name; each method's
metrics, the transfer verdicts, the candidate backbones and the per-stage times are printed
with their change against the baseline (HEAD by default: what this workspace changed since
the last commit).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from transferlab.errors import UserError, cli
from transferlab.params import PARAMS_FILE, load_params


def read_reports(rev: str | None, metrics: Path, timeline: Path) -> dict[str, dict]:
    """metrics.json and timeline.json of the workspace (rev None) or of a revision or
    experiment; {} for a file that revision does not have."""
    found = {}
    for name, path in (("metrics", metrics), ("timeline", timeline)):
        try:
            if rev is None:
                text = path.read_text()
            else:
                import dvc.api  # only for other revisions: the workspace needs no dvc

                text = dvc.api.read(str(path), rev=rev)
            found[name] = json.loads(text)
            if name == "timeline":  # a list in start order: one record per stage
                found[name] = {t["stage"]: t for t in found[name]}
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


def _delta(value: float | None, base: float | None, scale: float = 1.0, unit: str = "") -> str:
    if value is None or base is None:
        return ""
    return f" ({(value - base) * scale:+.1f}{unit})"


def render(current: dict, baseline: dict, name: str, baseline_name: str | None) -> str:
    """The summary as text: methods, verdicts and stage times, with deltas where known."""
    metrics, base_metrics = current["metrics"], baseline.get("metrics", {})
    if not metrics:
        raise UserError(f"{name} has no reports/metrics.json yet: run `dvc repro` first.")
    against = f", change against {baseline_name} in brackets" if baseline_name else ""
    lines = [f"{name}{against}", "", "method      accuracy           macro-F1  ECE"]
    for method, v in metrics.items():
        if method in ("transfer", "backbones"):
            continue
        base = base_metrics.get(method, {}).get("accuracy")
        spread = f" ± {v['accuracy_sd']:.4f}" if "accuracy_sd" in v else ""
        accuracy = f"{v['accuracy']:.4f}{spread}{_delta(v['accuracy'], base, 100, ' pt')}"
        lines.append(f"{method:<11} {accuracy:<18} {v['macro_f1']:.4f}    {v['ece']:.4f}")
    lines += ["", "verdict                  result        gain (points)"]
    for comparison, v in metrics.get("transfer", {}).items():
        base = base_metrics.get("transfer", {}).get(comparison, {}).get("gain")
        gain = f"{v['gain'] * 100:+.1f}{_delta(v['gain'], base, 100)}"
        lines.append(f"{comparison:<24} {v['verdict']:<13} {gain}")
    backbones, base_backbones = metrics.get("backbones", {}), base_metrics.get("backbones", {})
    if backbones:
        lines += ["", "backbone     probe              kNN                LogME     H-score"]
        for key, v in backbones.items():
            base = base_backbones.get(key, {})
            cells = [
                f"{v[m]:.4f}{_delta(v[m], base.get(m), 100, ' pt')}"
                for m in ("probe_accuracy", "knn_accuracy")
            ]
            lines.append(
                f"{key:<12} {cells[0]:<18} {cells[1]:<18} {v['logme']:<9.4f} {v['hscore']:.2f}"
            )
    timeline, base_timeline = current["timeline"], baseline.get("timeline", {})
    if timeline:
        lines += ["", "stage                    seconds  (ready / first step / steady / write)"]
        for stage, t in timeline.items():
            base = base_timeline.get(stage, {}).get("total_s")
            total = f"{t['total_s']:.1f}{_delta(t['total_s'], base, unit=' s')}"
            parts = " / ".join(
                f"{t[p]:.1f}" for p in ("ready_s", "first_step_s", "steady_s", "write_s")
            )
            lines.append(f"{stage:<24} {total:<16} ({parts})")
    return "\n".join(lines)


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.summary", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "rev", nargs="?", help="a git revision or dvc exp name (default: workspace)"
    )
    parser.add_argument("--baseline", default="HEAD", help="what to compare with (default: HEAD)")
    args = parser.parse_args(argv)
    paths = load_params(PARAMS_FILE).paths
    current = read_reports(args.rev, paths.metrics, paths.timeline)
    baseline = {}
    if args.baseline and args.baseline != args.rev:
        try:
            baseline = read_reports(args.baseline, paths.metrics, paths.timeline)
        except UserError as err:
            print(f"(no baseline: {err})", file=sys.stderr)
    name = args.rev or "workspace"
    print(render(current, baseline, name, args.baseline if baseline.get("metrics") else None))


if __name__ == "__main__":
    main()
