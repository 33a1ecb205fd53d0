"""python -m bench.variation: how much two identical runs differ on this device.

Runs extraction twice and a short fine-tune twice with the same params and seeds, through
the stage functions, and reports the largest differences. On CPU the stages are
deterministic (tests check byte equality); this measures what CUDA leaves to chance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from bench import gpu
from bench import run as bench_run
from transferlab.models import backbone
from transferlab.models.extract import extract_features
from transferlab.params import PARAMS_FILE, load_params


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags override params.yaml; none of their defaults repeats a param."""
    parser = argparse.ArgumentParser(prog="python -m bench.variation", description=__doc__)
    parser.add_argument("--data-path", help="Fashion-MNIST .gz folder (default: data.path)")
    parser.add_argument("--per-class", type=int, required=True, help="train/test images per class")
    parser.add_argument("--image-size", type=int, help="default: backbone.image_size")
    parser.add_argument("--epochs", type=int, help="default: finetune.epochs")
    parser.add_argument("--out", type=Path, help="write the result as JSON here too")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    params = load_params(args.params)
    params = dataclasses.replace(
        params,
        data=dataclasses.replace(
            params.data,
            path=args.data_path or params.data.path,
            train_per_class=args.per_class,
            test_per_class=args.per_class,
        ),
        backbone=dataclasses.replace(
            params.backbone, image_size=args.image_size or params.backbone.image_size
        ),
        finetune=dataclasses.replace(
            params.finetune, epochs=args.epochs or params.finetune.epochs, patience=10**6
        ),
    )
    device = backbone.resolve_device("auto")
    splits = bench_run.prepare_in_memory(params)
    name, weights = params.backbone.name, params.backbone.weights
    model = backbone.create_backbone(name, weights)
    cfg = backbone.input_config(model, params.backbone.image_size)
    batch = params.extract.batch_size
    features = [
        extract_features(model, splits["test"].images, cfg, batch_size=batch, device=device)
        for _ in range(2)
    ]
    num_classes = int(splits["train"].labels.max()) + 1
    trained = [gpu.train_and_predict(params, "full", splits, device, num_classes) for _ in range(2)]
    (first, p1), (second, p2) = trained
    weight_diff = max(
        float((first.state_dict[k].float() - second.state_dict[k].float()).abs().max())
        for k in first.state_dict
        if first.state_dict[k].is_floating_point()
    )
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "images": {s: len(p) for s, p in splits.items()},
        "input_size": cfg.size,
        "extract_max_abs_diff": float(np.abs(features[0] - features[1]).max()),
        "extract_identical": bool(np.array_equal(features[0], features[1])),
        "finetune_epochs": params.finetune.epochs,
        "finetune_max_abs_weight_diff": weight_diff,
        "finetune_test_accuracy": [
            float((p.argmax(1) == splits["test"].labels).mean()) for p in (p1, p2)
        ],
        "finetune_predictions_differing": int((p1.argmax(1) != p2.argmax(1)).sum()),
        "finetune_val_accuracy_by_epoch": [
            [row["val_accuracy"] for row in r.history] for r in (first, second)
        ],
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
