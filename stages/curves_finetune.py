"""Stage: data-efficiency curves by fine-tuning, on the probe curves' k-shot subsets."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import torch

from stages import backbone, data, guards, io, report, verdict
from stages.curves import SUMMARY_FILE, kshot_subsets, shot_label, summarise
from stages.data import LabelledImages
from stages.errors import cli
from stages.params import BASELINE, STRATEGIES, Backbone, Finetune, load_params, to_dict
from stages.training import predict_proba, train_strategy

CSV_FILE = "data_efficiency.csv"  # one column pair per strategy: the DVC plot's y names


def series_name(strategy: str) -> str:
    """The curve's name beside the probe series (e.g. finetune_full)."""
    return f"finetune_{strategy}"


def fit_subset(
    strategy: str,
    *,
    train: LabelledImages,
    val: LabelledImages,
    test: LabelledImages,
    model_config: Backbone,
    config: Finetune,
    num_classes: int,
    device: torch.device,
) -> dict[str, float]:
    """Fine-tune one fresh model on `train`, keep the best-on-val epoch, score it on test."""
    trained = train_strategy(
        strategy,
        model_config=model_config,
        config=config,
        train=train,
        val=val,
        num_classes=num_classes,
        device=device,
        desc=f"{strategy} k-shot",
    )
    result = trained.result
    probs = predict_proba(
        trained.model, test.images, trained.input_cfg, batch_size=config.batch_size, device=device
    )
    return {
        "accuracy": float((probs.argmax(1) == test.labels).mean()),
        "val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
    }


def kshot_finetune(
    strategies_to_fit: tuple[str, ...],
    *,
    train: LabelledImages,
    val: LabelledImages,
    test: LabelledImages,
    shots: tuple[int | None, ...],
    seeds: int,
    model_config: Backbone,
    config: Finetune,
    num_classes: int,
    device: torch.device,
) -> list[dict]:
    """One row per (strategy, shot, seed), on the same nested subsets as the probe curves.

    Curve seed s draws kshot_subsets(seed=s), as stages/curves.py does, and trains with
    finetune.seed + s, so the spread per shot covers both the subset and the training run.
    """
    rows: list[dict] = []
    for seed in range(seeds):
        run_config = dataclasses.replace(config, seed=config.seed + seed)
        for shot, index in kshot_subsets(train.labels, shots, seed=seed).items():
            for strategy in strategies_to_fit:
                start = time.perf_counter()
                scores = fit_subset(
                    strategy,
                    train=train.subset(index),
                    val=val,
                    test=test,
                    model_config=model_config,
                    config=run_config,
                    num_classes=num_classes,
                    device=device,
                )
                rows.append(
                    {
                        "series": series_name(strategy),
                        "shot": shot_label(shot),
                        "seed": seed,
                        **scores,
                        "subset": hashlib.md5(index.tobytes()).hexdigest(),
                        "seconds": round(time.perf_counter() - start, 3),
                    }
                )
    return rows


def scratch_pairs(strategies_to_fit: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Each listed strategy against scratch on the same subsets, when scratch is listed."""
    if BASELINE not in strategies_to_fit:
        return {}
    return {
        f"{series_name(s)}_vs_{BASELINE}": (series_name(s), series_name(BASELINE))
        for s in strategies_to_fit
        if s != BASELINE
    }


def plot_columns(summary: dict, strategies_to_fit: tuple[str, ...]) -> dict:
    """The summary keyed by bare strategy name, the CSV columns dvc.yaml's plot names."""
    return {s: summary[series_name(s)] for s in strategies_to_fit}


@cli
def main() -> None:
    from stages import tracking

    params = load_params()
    listed = params.curves.finetune
    paths = params.paths
    train = data.load_prepared(paths.prepared, "train")  # subsets are copied out of the map
    rows: list[dict] = []
    start = time.perf_counter()
    # Log only the sections the listed strategies read, as stages/finetune.py does.
    own = {
        k: v
        for k, v in to_dict(params.finetune).items()
        if k not in (*STRATEGIES, "lpft", "strategies", "from_probe") or k in listed
    }
    logged = {
        "curves": {"shots": params.curves.shots, "seeds": params.curves.seeds, "finetune": listed},
        "verdict": to_dict(params.verdict),
        "backbone": to_dict(params.backbone),
        "finetune": own,
    }
    with tracking.stage_run("curves_finetune", logged, required=params.tracking.required) as run:
        if listed:  # the default: no list, no loading or training, empty outputs
            device = backbone.resolve_device(params.finetune.device)
            with guards.deterministic(device):
                rows = kshot_finetune(
                    listed,
                    train=train,
                    val=data.load_prepared(paths.prepared, "val"),
                    test=data.load_prepared(paths.prepared, "test"),
                    shots=params.curves.shots,
                    seeds=params.curves.seeds,
                    model_config=params.backbone,
                    config=params.finetune,
                    num_classes=len(data.load_classes(paths.prepared)),
                    device=device,
                )
        summary = summarise(rows)
        out = paths.curves_finetune
        columns = plot_columns(summary, listed)
        io.write_text(out / CSV_FILE, report.curve_csv(columns, params.curves.shots, train.labels))
        # How much pretraining helps as labels shrink: paired by seed (same subset), per shot.
        comparisons = verdict.curve_comparisons(
            rows,
            scratch_pairs(listed),
            config=params.verdict,
            transferred=params.backbone.weights != "none",
        )
        io.write_json(
            out / SUMMARY_FILE, {"series": summary, "comparisons": comparisons, "rows": rows}
        )
        run.log_artifact(out / SUMMARY_FILE)
        seconds = time.perf_counter() - start
        means = {
            f"{series}.{shot}": cell["mean"]
            for series, cells in summary.items()
            for shot, cell in cells.items()
        }
        run.log_metrics({**means, "seconds": seconds, "fits": len(rows)})
    print(f"curves_finetune: {len(rows)} fits of {list(listed)} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
