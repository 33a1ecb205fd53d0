"""Stage 4: fine-tune the backbone with a new head, or train it from scratch (baseline).

A thin main over stages/training.py: build the strategy's model, train, write its outputs.
"""

from __future__ import annotations

import dataclasses
import sys

import torch

from stages import backbone, data, distributed, guards, io
from stages.errors import UserError, cli
from stages.params import FROM_PROBE, STRATEGIES, load_params, to_dict
from stages.training import predict_proba, train_strategy


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
    classes = data.load_classes(params.paths.prepared)
    device = backbone.resolve_device(params.finetune.device)
    # training.train_strategy seeds torch's global RNG in a scope for the model it builds.
    with distributed.process_group(device) as device, guards.deterministic(device):
        run_strategy(params, strategy, classes, device)


def run_strategy(params, strategy: str, classes: tuple[str, ...], device: torch.device) -> None:
    """Train one strategy and write its checkpoint, predictions and record."""
    from stages import tracking

    train = data.load_prepared(params.paths.prepared, "train", mmap=False)
    val = data.load_prepared(params.paths.prepared, "val")
    test = data.load_prepared(params.paths.prepared, "test")
    # Log the shared settings and this strategy's own section, not the other strategies'.
    own = {
        k: v
        for k, v in to_dict(params.finetune).items()
        if k not in (*STRATEGIES, *FROM_PROBE) or k == strategy
    }
    logged = {"backbone": to_dict(params.backbone), "finetune": own}
    with tracking.stage_run(
        f"finetune@{strategy}", logged, required=params.tracking.required
    ) as run:
        trained = train_strategy(
            strategy,
            model_config=params.backbone,
            config=params.finetune,
            train=train,
            val=val,
            num_classes=len(classes),
            device=device,
            probe_dir=io.method_dir(params.paths.methods, "probe"),
        )
        if not distributed.is_main():
            return  # rank 0 holds the same weights and writes everything
        model, input_cfg, result = trained.model, trained.input_cfg, trained.result
        out = io.method_dir(params.paths.methods, strategy)
        io.save_checkpoint(
            out / io.CHECKPOINT_FILE,
            {
                "model": result.state_dict,
                "config": {
                    "backbone": params.backbone.name,
                    "strategy": strategy,
                    "num_classes": len(classes),
                    "classes": list(classes),
                    "input": dataclasses.asdict(input_cfg),
                    "best_epoch": result.best_epoch,
                    **trained.applied,
                },
            },
        )
        probs = predict_proba(
            model, test.images, input_cfg, batch_size=params.extract.batch_size, device=device
        )
        io.save_array(out / io.PREDICTIONS_FILE, probs)
        record = {
            "method": strategy,
            "best_epoch": result.best_epoch,
            "val_accuracy": result.best_val_accuracy,
            "epochs_run": len(result.history),
            "history": result.history,
            **trained.applied,
            "train_images_per_s": round(result.images_per_s, 1),
        }
        io.write_json(out / io.RECORD_FILE, record)
        for row in result.history:
            run.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        run.log_metrics(
            {
                "best_val_accuracy": result.best_val_accuracy,
                "train_images_per_s": result.images_per_s,
            }
        )
        run.log_artifact(out / io.CHECKPOINT_FILE, "model")
        run.log_artifact(out / io.RECORD_FILE)
        print(
            f"{strategy}: best val accuracy {result.best_val_accuracy:.4f} "
            f"(epoch {result.best_epoch}), {result.images_per_s:.0f} train img/s"
        )


if __name__ == "__main__":
    main()
