"""Stage curves_finetune: data-efficiency curves by fine-tuning the strategies listed in
curves.finetune on the probe curves' k-shot subsets, with the chosen candidate backbone.
An empty list (the default) trains nothing and writes empty outputs in a second."""

from __future__ import annotations

import time

from transferlab import io, tracking
from transferlab.data.prepared import load_classes, load_prepared
from transferlab.device import guards, host
from transferlab.errors import cli
from transferlab.evaluation import tables, verdict
from transferlab.evaluation.curves_finetune import kshot_finetune, plot_columns, scratch_pairs
from transferlab.evaluation.kshot import (
    CORRECT_FILE,
    CSV_FILE,
    SUMMARY_FILE,
    single_fit_correct,
    summarise,
    without_correct,
)
from transferlab.params import Model, Params, load_params, to_dict
from transferlab.selection import chosen_model
from transferlab.tracking import StageRun


@cli
def main() -> None:
    params = load_params()
    listed = params.curves.finetune
    logged = {
        "curves": {"shots": params.curves.shots, "seeds": params.curves.seeds, "finetune": listed},
        "verdict": to_dict(params.verdict),
        "backbone": to_dict(chosen_model(params)),
        "finetune": tracking.finetune_settings(params.finetune, listed),
    }
    with tracking.stage_run("curves_finetune", params, logged) as recorder:
        line = run(params, recorder)
    print(line)


def run(params: Params, recorder: StageRun) -> str:
    """The stage: a k-shot fine-tuning curve per strategy in curves.finetune (nothing
    trained when it is empty); returns its summary."""
    listed, model = params.curves.finetune, chosen_model(params)
    start = time.perf_counter()
    recorder.clock.ready()
    rows = train_rows(params, model, recorder.clock) if listed else []  # default: no training
    record, means = write_curve(params, rows, model)
    seconds = time.perf_counter() - start
    recorder.publish(
        record=record,
        record_path=params.paths.curves_finetune / SUMMARY_FILE,
        metrics={**means, "seconds": seconds, "fits": len(rows)},
    )
    return f"curves_finetune: {len(rows)} fits of {list(listed)} in {seconds:.1f} s"


def train_rows(params: Params, model: Model, clock) -> list[dict]:
    """One row per (strategy, shot, seed): each fit's test accuracy and correctness."""
    paths = params.paths
    device = host.resolve_device(params.finetune.device)
    with guards.deterministic(device):
        return kshot_finetune(
            params.curves.finetune,
            train=load_prepared(paths.prepared, "train"),  # subsets are copied out of the map
            val=load_prepared(paths.prepared, "val"),
            test=load_prepared(paths.prepared, "test"),
            shots=params.curves.shots,
            seeds=params.curves.seeds,
            model_config=model,
            config=params.finetune,
            num_classes=len(load_classes(paths.prepared)),
            device=device,
            clock=clock,
        )


def write_curve(params: Params, rows: list[dict], model: Model) -> tuple[dict, dict]:
    """Write the curve's CSV and per-image correctness; return its summary record (series,
    verdicts against scratch, rows) and each cell's mean, for MLflow."""
    listed, out = params.curves.finetune, params.paths.curves_finetune
    summary = summarise(rows)
    train_labels = load_prepared(params.paths.prepared, "train").labels
    columns = plot_columns(summary, listed)
    io.write_text(out / CSV_FILE, tables.curve_csv(columns, params.curves.shots, train_labels))
    io.write_json(out / CORRECT_FILE, single_fit_correct(rows))
    # How much pretraining helps as labels shrink: paired by seed (same subset), per shot:
    # one fit a shot by McNemar's test on the test images, several by a t over seeds.
    comparisons = verdict.curve_comparisons(
        rows, scratch_pairs(listed), config=params.verdict, transferred=model.pretrained
    )
    means = {
        f"{series}.{shot}": cell["mean"]
        for series, cells in summary.items()
        for shot, cell in cells.items()
    }
    record = {"series": summary, "comparisons": comparisons, "rows": without_correct(rows)}
    return record, means


if __name__ == "__main__":
    main()
