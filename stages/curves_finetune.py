"""Stage curves_finetune: data-efficiency curves by fine-tuning the strategies listed in
curves.finetune on the probe curves' k-shot subsets, with the chosen candidate backbone.
An empty list (the default) trains nothing and writes empty outputs in a second."""

from __future__ import annotations

import time

from transferlab import publish, tracking
from transferlab.data.layout import load_classes, load_prepared
from transferlab.device import guards, host
from transferlab.evaluation.curves import kshot
from transferlab.evaluation.curves.finetune_curves import IN_BUDGET, kshot_finetune
from transferlab.evaluation.curves.kshot import (
    SUMMARY_FILE,
    series_name,
    unusable_shots,
    usable_shots,
)
from transferlab.params import Model, Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.selection import chosen_model
from transferlab.shell import cli


@cli
def main() -> None:
    params = load_params()
    listed = params.curves.finetune
    logged = {
        "curves": {"shots": params.curves.shots, "seeds": params.curves.seeds, "finetune": listed},
        "backbone": to_dict(chosen_model(params)),
        "finetune": tracking.finetune_settings(params.finetune, listed),
    }
    with publish.stage("curves_finetune", params, logged) as recorder:
        line = run(params, recorder)
    print(line)


def run(params: Params, recorder: Stage) -> str:
    """The stage: a k-shot fine-tuning curve per strategy in curves.finetune (nothing
    trained when it is empty); returns its summary."""
    listed, model = params.curves.finetune, chosen_model(params)
    start = time.perf_counter()
    recorder.clock.ready()
    rows = train_rows(params, model, recorder.clock) if listed else []  # default: no training
    record, means = write_curve(params, rows)
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
    train = load_prepared(paths.prepared, "train")  # subsets are copied out of the map
    with guards.deterministic(device):
        return kshot_finetune(
            params.curves.finetune,
            train=train,
            test=load_prepared(paths.prepared, "test"),
            shots=usable_shots(params.curves.shots, train.labels),
            seeds=params.curves.seeds,
            model_config=model,
            config=params.finetune,
            num_classes=len(load_classes(paths.prepared)),
            device=device,
            clock=clock,
        )


def write_curve(params: Params, rows: list[dict]) -> tuple[dict, dict]:
    """kshot.write_curve with one column per listed strategy (the names dvc.yaml's plot
    takes); returns its summary record and each cell's mean, for MLflow."""
    listed = params.curves.finetune
    train_labels = load_prepared(params.paths.prepared, "train").labels
    summary = kshot.write_curve(
        params.paths.curves_finetune,
        rows,
        shots=usable_shots(params.curves.shots, train_labels),
        train_labels=train_labels,
        columns={strategy: series_name(strategy) for strategy in listed},
    )
    summary["shots_as_all"] = unusable_shots(params.curves.shots, train_labels)
    summary["selection"] = IN_BUDGET
    means = {
        f"{series}.{shot}": cell["mean"]
        for series, cells in summary["series"].items()
        for shot, cell in cells.items()
    }
    return summary, means


if __name__ == "__main__":
    main()
