"""python -m bench pipeline: the pipeline's compute core, timed, without dvc or mlflow.

prepare -> extract -> probe -> fine-tune each of finetune.strategies and finetune.from_probe
(lpft starts from this run's probe head), each scored on test, through the library functions
the stages run (prepare, embed_splits, fit_probe, train_strategy, method_metrics), in one
process. The JSON is rewritten after every step, so a run cut off by a time limit still
reports what it finished.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from bench.common import benched_model, environment, load_splits, prepared_workdir
from transferlab import io
from transferlab.data.prepared import load_features
from transferlab.device import guards
from transferlab.device.host import resolve_device
from transferlab.evaluation.metrics import method_metrics
from transferlab.evaluation.probe import C_grid, fit_probe, resolve_backend
from transferlab.models import backbone
from transferlab.models.extract import embed_splits, frozen_backbone
from transferlab.models.training import train_strategy
from transferlab.params import Params, to_dict


def run_pipeline(params: Params, out: Path) -> dict:
    """Every step in order; returns (and keeps rewriting at `out`) the record."""
    start = time.perf_counter()
    device = resolve_device(params.extract.device)
    record: dict = {
        "device": environment(device),
        "backbone": to_dict(benched_model(params)),
        "finetune": to_dict(params.finetune),
        "probe_config": to_dict(params.probe),
    }

    def save(step: str) -> None:
        record.setdefault("elapsed_s", {})[step] = round(time.perf_counter() - start, 1)
        io.write_json(out, record)

    with prepared_workdir(params) as work:
        paths = work.paths
        splits = load_splits(paths.prepared)
        record["images"] = {split: len(part) for split, part in splits.items()}
        save("prepare")

        spec = benched_model(params)
        model = frozen_backbone(spec.name, spec.weights, seed=spec.seed, device=device)
        cfg = backbone.input_config(model, spec.image_size)
        with guards.deterministic(device):
            done = embed_splits(
                model,
                cfg,
                source=paths.prepared,
                out=paths.features,
                batch_size=params.extract.batch_size,
                device=device,
            )
        record["input_size"] = cfg.size
        record["extract"] = {
            "seconds": done.seconds,
            "images_per_s": done.images / done.seconds,
            "batch_size": params.extract.batch_size,
            "feature_dim": done.feature_dim,
            "device": str(device),
        }
        save("extract")
        del model
        features = {s: load_features(paths.features, s) for s in splits}

    probe_device = resolve_device(params.probe.device)
    tick = time.perf_counter()
    backend = resolve_backend(params.probe.backend, probe_device)
    fit = fit_probe(
        train_features=features["train"][0],
        train_labels=features["train"][1],
        val_features=features["val"][0],
        val_labels=features["val"][1],
        grid=C_grid(params.probe),
        max_iter=params.probe.max_iter,
        backend=backend,
        device=probe_device,
    )
    test_x, test_y = features["test"]
    record["probe"] = {
        **method_metrics(test_y, fit.predict_proba(test_x)),
        "C": fit.C,
        "backend": backend,
        "device": str(probe_device),
        "seconds": time.perf_counter() - tick,
    }
    save("probe")
    del features
    probe_dir = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    io.save_arrays(probe_dir / io.HEAD_FILE, **fit.head_arrays())

    train_device = resolve_device(params.finetune.device)
    num_classes = int(splits["train"].labels.max()) + 1
    for strategy in params.finetune.runs:
        tick = time.perf_counter()
        with guards.deterministic(train_device):
            trained = train_strategy(
                strategy,
                model_config=benched_model(params),
                config=params.finetune,
                train=splits["train"],
                val=splits["val"],
                num_classes=num_classes,
                device=train_device,
                test=splits["test"],
                predict_batch_size=params.extract.batch_size,
                probe_dir=probe_dir,
            )
        result = trained.result
        record[strategy] = {
            **method_metrics(splits["test"].labels, trained.test_probs),
            "best_epoch": result.best_epoch,
            "val_accuracy": result.best_val_accuracy,
            "train_images_per_s": result.images_per_s,
            "history": result.history,
            **trained.applied,
            "device": str(train_device),
            "seconds": time.perf_counter() - tick,
        }
        del trained
        if train_device.type == "cuda":
            torch.cuda.empty_cache()
        save(strategy)
    shutil.rmtree(probe_dir)
    return record


def summary(record: dict) -> str:
    """The compact table printed last."""
    extract, probe = record["extract"], record["probe"]
    lines = [
        f"device: {record['device']['device']}  input {record['input_size']} px  "
        f"images {record['images']}",
        f"extract  {extract['images_per_s']:>9.0f} img/s  batch {extract['batch_size']}",
        f"probe    test acc {probe['accuracy']:.4f}  C={probe['C']:.3g}  "
        f"({probe['backend']}, {probe['seconds']:.1f} s)",
    ]
    for strategy in (*record["finetune"]["strategies"], *record["finetune"]["from_probe"]):
        row = record[strategy]
        lines.append(
            f"{strategy:<8} test acc {row['accuracy']:.4f}  "
            f"{row['train_images_per_s']:.0f} img/s  {row['seconds']:.0f} s"
        )
    lines.append(f"total {max(record['elapsed_s'].values()):.0f} s")
    return "\n".join(lines)


def run(params: Params, args: argparse.Namespace) -> dict:
    record = run_pipeline(params, args.out)
    print(summary(record))
    print(f"wrote {args.out}")
    return record
