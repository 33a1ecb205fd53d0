"""Stage finetune: train one strategy's model (a pretrained backbone with a new head, or the
from-scratch baseline), then write its checkpoint, test predictions and record."""

from __future__ import annotations

import dataclasses
import sys

from transferlab import io, tracking
from transferlab.data.prepared import load_classes, load_prepared
from transferlab.device import distributed, guards, host
from transferlab.errors import UserError, cli
from transferlab.models.training import train_strategy
from transferlab.params import finetune_settings, load_params, to_dict


@cli
def main() -> None:
    if len(sys.argv) != 2:
        raise UserError("usage: python -m stages.finetune <strategy>")
    strategy = sys.argv[1]
    params = load_params()
    if strategy not in params.finetune.runs:
        raise UserError(
            f"strategy {strategy!r} is not in finetune.strategies or finetune.from_probe "
            f"{list(params.finetune.runs)}."
        )
    paths = params.paths
    classes = load_classes(paths.prepared)
    logged = {
        "backbone": to_dict(params.backbone),
        "finetune": finetune_settings(params.finetune, [strategy]),
    }
    with (
        distributed.process_group(host.resolve_device(params.finetune.device)) as device,
        guards.deterministic(device),
        tracking.stage_run(f"finetune@{strategy}", params, logged) as run,
    ):
        trained = train_strategy(
            strategy,
            model_config=params.backbone,
            config=params.finetune,
            train=load_prepared(paths.prepared, "train", mmap=False),
            val=load_prepared(paths.prepared, "val"),
            num_classes=len(classes),
            device=device,
            probe_dir=io.method_dir(paths.methods, "probe"),
            test=load_prepared(paths.prepared, "test"),
            predict_batch_size=params.extract.batch_size,
        )
        if not distributed.is_main():
            return  # rank 0 holds the same weights and writes everything
        result = trained.result
        out = io.method_dir(paths.methods, strategy)
        config = {
            "backbone": params.backbone.name,
            "strategy": strategy,
            "num_classes": len(classes),
            "classes": list(classes),
            "input": dataclasses.asdict(trained.input_cfg),
            "best_epoch": result.best_epoch,
            **trained.applied,
        }
        io.save_checkpoint(out / io.CHECKPOINT_FILE, {"model": result.state_dict, "config": config})
        io.save_array(out / io.PREDICTIONS_FILE, trained.test_probs)
        record = {
            "method": strategy,
            "best_epoch": result.best_epoch,
            "val_accuracy": result.best_val_accuracy,
            "epochs_run": len(result.history),
            "history": result.history,
            **trained.applied,
            "train_images_per_s": round(result.images_per_s, 1),
        }
        for row in result.history:
            run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        run.publish(
            record=record,
            record_path=out / io.RECORD_FILE,
            metrics={
                "best_val_accuracy": result.best_val_accuracy,
                "train_images_per_s": result.images_per_s,
            },
            artifacts=[(out / io.CHECKPOINT_FILE, "model")],
        )
    print(
        f"{strategy}: best val accuracy {result.best_val_accuracy:.4f} "
        f"(epoch {result.best_epoch}), {result.images_per_s:.0f} train img/s"
    )


if __name__ == "__main__":
    main()
