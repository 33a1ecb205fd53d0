"""python -m bench variation: how much two identical runs differ on this device.

Extracts the test split twice and trains one strategy twice (train_strategy, predicting
test) with the same params and seeds, and reports the largest differences. On CPU the
stages are deterministic (tests check byte equality); this measures what CUDA leaves to
chance. Size it with -S, e.g. -S data.train_per_class=600 -S data.test_per_class=600.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench.common import benched_model, environment, prepare_splits
from transferlab import io
from transferlab.device import guards
from transferlab.device.host import resolve_device
from transferlab.models import backbone
from transferlab.models.extract import extract_features, frozen_backbone
from transferlab.models.training import train_strategy
from transferlab.params import Params


def run_variation(params: Params, strategy: str) -> dict:
    splits = prepare_splits(params)
    test = splits["test"]
    device = resolve_device(params.extract.device)
    features = []
    for _ in range(2):
        spec = benched_model(params)
        model = frozen_backbone(spec.name, spec.weights, seed=spec.seed, device=device)
        cfg = backbone.spec_input(model, spec, test.images.shape[1])
        with guards.deterministic(device):
            features.append(
                extract_features(
                    model, test.images, cfg, batch_size=params.extract.batch_size, device=device
                )
            )
    train_device = resolve_device(params.finetune.device)
    trained = []
    for _ in range(2):
        with guards.deterministic(train_device):
            trained.append(
                train_strategy(
                    strategy,
                    model_config=benched_model(params),
                    config=params.finetune,
                    train=splits["train"],
                    val=splits["val"],
                    num_classes=int(splits["train"].labels.max()) + 1,
                    device=train_device,
                    test=test,
                    predict_batch_size=params.extract.batch_size,
                )
            )
    first, second = (t.result for t in trained)
    p1, p2 = (t.test_probs for t in trained)
    weight_diff = max(
        float((first.state_dict[k].float() - second.state_dict[k].float()).abs().max())
        for k in first.state_dict
        if first.state_dict[k].is_floating_point()
    )
    return {
        "device": environment(device)["device"],
        "images": {s: len(p) for s, p in splits.items()},
        "input_size": cfg.size,
        "extract_max_abs_diff": float(np.abs(features[0] - features[1]).max()),
        "extract_identical": bool(np.array_equal(features[0], features[1])),
        "finetune_strategy": strategy,
        "finetune_epochs": params.finetune.epochs,
        "finetune_max_abs_weight_diff": weight_diff,
        "finetune_test_accuracy": [float((p.argmax(1) == test.labels).mean()) for p in (p1, p2)],
        "finetune_predictions_differing": int((p1.argmax(1) != p2.argmax(1)).sum()),
        "finetune_val_accuracy_by_epoch": [
            [row["val_accuracy"] for row in r.history] for r in (first, second)
        ],
    }


def run(params: Params, args: argparse.Namespace) -> dict:
    report = run_variation(params, args.strategy or params.finetune.strategies[0])
    if args.out:
        io.write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return report
