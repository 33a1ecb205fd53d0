"""Stage finetune, `python -m stages.finetune <strategy>`: train one strategy's model (a
pretrained backbone with a new head, or the from-scratch baseline) on each candidate the rank
stage chose, for each of finetune.seeds seeds; per candidate, write the first seed's
checkpoint, every seed's test predictions and the record."""

from __future__ import annotations

import dataclasses
import sys

from transferlab import io, publish, selection, tracking
from transferlab.data.layout import load_classes, load_prepared
from transferlab.device import distributed, guards, host
from transferlab.errors import UserError
from transferlab.models.training import checkpoint, train_strategy, training_record
from transferlab.params import Model, Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.shell import cli


@cli
def main() -> None:
    if len(sys.argv) != 2:
        raise UserError("usage: python -m stages.finetune <strategy>")
    strategy, params = sys.argv[1], load_params()
    if strategy not in params.finetune.runs:
        raise UserError(
            f"strategy {strategy!r} is not in finetune.strategies or finetune.from_probe "
            f"{list(params.finetune.runs)}."
        )
    models = selection.selected_models(params)
    logged = {
        "backbones": {key: to_dict(model) for key, model in models.items()},
        "finetune": tracking.finetune_settings(params.finetune, [strategy]),
    }
    with publish.stage(params.finetune.stage(strategy), params, logged) as recorder:
        line = run(params, recorder, strategy)
    if line:  # rank 0's; under torchrun the other ranks say nothing
        print(line)


def run(params: Params, recorder: Stage, strategy: str) -> str | None:
    """The stage for `strategy`: every chosen candidate trained and published; returns the
    summary on rank 0, None on the others."""
    models = selection.selected_models(params)
    with (
        distributed.process_group(host.resolve_device(params.finetune.device)) as device,
        guards.deterministic(device),
    ):
        lines = [
            train_candidate(params, strategy, key, model, device, recorder)
            for key, model in models.items()
        ]
    if not distributed.is_main():
        return None
    recorder.publish()
    return "\n".join(lines)


def train_candidate(params: Params, strategy: str, key: str, model: Model, device, recorder) -> str:
    """Train `strategy` on candidate `key` for each seed; rank 0 writes the first seed's
    checkpoint, every seed's test predictions and the record, and logs them to `recorder`."""
    paths, config = params.paths, params.finetune
    out, runs, rates, adapter_bytes = io.method_dir(paths.methods, strategy, key), [], None, None
    for index, seed in enumerate(range(config.seed, config.seed + config.seeds)):
        # The first seed chooses among the learning rates; the others train at its.
        trained = train_strategy(
            strategy,
            model_config=model,
            config=dataclasses.replace(config, seed=seed),
            train=load_prepared(paths.prepared, "train", mmap=False),
            val=load_prepared(paths.prepared, "val"),
            num_classes=len(load_classes(paths.prepared)),
            device=device,
            probe_dir=selection.head_dir(paths, key),
            test=load_prepared(paths.prepared, "test"),
            predict_batch_size=params.extract.batch_size,
            clock=recorder.clock,
            rates=rates,
        )
        rates = (trained.applied["lr"],)
        if distributed.is_main():  # rank 0 holds the same weights and writes everything
            saved = publish_seed(trained, index, out, strategy, key, model, paths, recorder)
            adapter_bytes = saved if index == 0 else adapter_bytes  # lora's, the first seed's
        runs.append((seed, trained))
    result = runs[0][1].result
    if distributed.is_main():
        record = training_record(strategy, runs, adapter_bytes=adapter_bytes)
        io.write_json(out / io.RECORD_FILE, record)
        recorder.mlflow.log_metrics(
            {
                f"{key}.val_accuracy": result.val_accuracy,
                f"{key}.train_images_per_s": result.images_per_s,
            }
        )
        recorder.mlflow.log_artifact(out / io.RECORD_FILE, key)
        recorder.mlflow.log_artifact(out / io.CHECKPOINT_FILE, f"{key}/model")
    return (
        f"{strategy} on {key}: val accuracy {result.val_accuracy:.4f} (epoch "
        f"{result.kept_epoch} kept, seed {config.seed}), {result.images_per_s:.0f} train img/s"
        + (f"; {config.seeds} seeds" if config.seeds > 1 else "")
    )


def publish_seed(
    trained, index, out, strategy: str, key: str, model: Model, paths, recorder
) -> int | None:
    """One seed's test predictions; for the first, its checkpoint (merged, for lora), its
    adapter where it has one, and per-epoch metrics. Returns the adapter file's bytes."""
    io.save_array(out / io.predictions_file(index), trained.test_probs)
    if index:
        return None
    classes = load_classes(paths.prepared)
    saved = checkpoint(trained, strategy=strategy, backbone_name=model.name, classes=classes)
    io.save_checkpoint(out / io.CHECKPOINT_FILE, saved)
    for row in trained.result.history:
        epoch = {f"{key}.{k}": v for k, v in row.items() if k != "epoch"}
        recorder.mlflow.log_metrics(epoch, step=int(row["epoch"]))
    if trained.adapter is None:
        return None
    io.save_arrays(out / io.ADAPTER_FILE, **trained.adapter)
    recorder.mlflow.log_artifact(out / io.ADAPTER_FILE, f"{key}/adapter")
    return (out / io.ADAPTER_FILE).stat().st_size


if __name__ == "__main__":
    main()
