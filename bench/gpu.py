"""python -m bench.gpu: the bench in full mode, then the full-data pipeline's compute core.

For a bare GPU box (torch, timm, numpy, scikit-learn; no dvc, mlflow or internet): prepare
arrays -> extract -> probe -> fine-tune each strategy -> test accuracy, with the same stage
functions `dvc repro` runs, writing JSON after every step so a cut-off run still reports.
bench/gpu_run.sh is the one-command wrapper. `--tiny` is a seconds-long CPU smoke test.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from bench import run as bench_run
from bench.report import environment
from transferlab.models import backbone
from transferlab import io
from transferlab.models import training
from transferlab.data.prepared import LabelledImages
from transferlab.errors import cli
from transferlab.evaluation.metrics import method_metrics
from transferlab.models.extract import extract_features
from transferlab.params import PARAMS_FILE, Params, load_params, to_dict
from transferlab.evaluation.probe import C_grid, fit_probe, resolve_backend

TINY_PER_CLASS = 12  # --tiny: images per class in train and test, at TINY_SIZE px
TINY_SIZE = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags override params.yaml; none of their defaults repeats a param."""
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON results")
    parser.add_argument("--data-path", help="Fashion-MNIST .gz folder (default: data.path)")
    bench_run.add_overrides(parser)  # the bench gets them too
    parser.add_argument("--grid-size", type=int, help="bench probe grid (default: probe.C_num)")
    parser.add_argument("--compare-max-iter", type=int, help="bench single-C fits")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test at toy size")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    return parser.parse_args(argv)


def pipeline_params(params: Params, args: argparse.Namespace) -> Params:
    """Full data at the model's own resolution (or toy sizes with --tiny)."""
    cap = TINY_PER_CLASS if args.tiny else None
    return dataclasses.replace(
        params,
        data=dataclasses.replace(
            params.data,
            path=args.data_path or params.data.path,
            train_per_class=cap,
            test_per_class=cap,
        ),
        backbone=dataclasses.replace(params.backbone, image_size=TINY_SIZE if args.tiny else None),
    )


def train_and_predict(
    params: Params,
    strategy: str,
    splits: dict[str, LabelledImages],
    device: torch.device,
    num_classes: int,
) -> tuple[training.TrainResult, np.ndarray]:
    """Train one strategy as the stage does, then its test probabilities."""
    trained = training.train_strategy(
        strategy,
        model_config=params.backbone,
        config=params.finetune,
        train=splits["train"],
        val=splits["val"],
        num_classes=num_classes,
        device=device,
    )
    probs = training.predict_proba(
        trained.model,
        splits["test"].images,
        trained.input_cfg,
        batch_size=params.extract.batch_size,
        device=device,
    )
    return trained.result, probs


def run_pipeline(params: Params, device: torch.device, out: Path) -> dict:
    """prepare -> extract -> probe -> fine-tune strategies, each scored on test."""
    start = time.perf_counter()
    record: dict = {"device": environment(device), "finetune": to_dict(params.finetune)}

    def save(step: str) -> None:
        record.setdefault("elapsed_s", {})[step] = round(time.perf_counter() - start, 1)
        io.write_json(out, record)

    splits = bench_run.prepare_in_memory(params)
    record["images"] = {split: len(part) for split, part in splits.items()}
    save("prepare")

    name, weights = params.backbone.name, params.backbone.weights
    model = backbone.create_backbone(name, weights)
    cfg = backbone.input_config(model, params.backbone.image_size)
    record["input_size"] = cfg.size
    features, seconds = {}, 0.0
    for split, part in splits.items():
        tick = time.perf_counter()
        features[split] = extract_features(
            model, part.images, cfg, batch_size=params.extract.batch_size, device=device
        )
        seconds += time.perf_counter() - tick
    images = sum(len(part) for part in splits.values())
    record["extract"] = {
        "seconds": seconds,
        "images_per_s": images / seconds,
        "batch_size": params.extract.batch_size,
    }
    save("extract")

    tick = time.perf_counter()
    backend = resolve_backend(params.probe.backend, device)
    fit = fit_probe(
        train_features=features["train"],
        train_labels=splits["train"].labels,
        val_features=features["val"],
        val_labels=splits["val"].labels,
        grid=C_grid(params.probe),
        max_iter=params.probe.max_iter,
        backend=backend,
        device=device,
    )
    record["probe"] = {
        **method_metrics(splits["test"].labels, fit.predict_proba(features["test"])),
        "C": fit.C,
        "backend": backend,
        "seconds": time.perf_counter() - tick,
    }
    save("probe")
    del model, features

    num_classes = int(splits["train"].labels.max()) + 1
    for strategy in params.finetune.strategies:
        tick = time.perf_counter()
        result, probs = train_and_predict(params, strategy, splits, device, num_classes)
        record[strategy] = {
            **method_metrics(splits["test"].labels, probs),
            "best_epoch": result.best_epoch,
            "val_accuracy": result.best_val_accuracy,
            "train_images_per_s": result.images_per_s,
            "history": result.history,
            "seconds": time.perf_counter() - tick,
        }
        save(strategy)
    return record


def summary(bench: dict | None, pipeline: dict, total_s: float) -> str:
    """The compact table printed last."""
    lines = [f"device: {pipeline['device']['device']}  input {pipeline['input_size']} px"]
    if bench:
        e, f, p = bench["extract"], bench["finetune"], bench["probe"]
        lines += [
            f"bench extract   {e['images_per_s']:>9.0f} img/s"
            f"  ceiling {e['ceiling_images_per_s']:.0f}"
            f"  ratio {e['ratio']:.2f}  PIL loader {bench['reference_loader']['images_per_s']:.0f}",
            f"bench finetune  {f['images_per_s']:>9.0f} img/s"
            f"  ceiling {f['ceiling_images_per_s']:.0f}"
            f"  ratio {f['ratio']:.2f}",
            f"bench probe     {p['fit_seconds']:>9.2f} s  acc {p['accuracy']:.4f}  sklearn "
            f"{p['sklearn_fit_seconds']:.2f} s acc {p['sklearn_accuracy']:.4f}  "
            f"grid of {p['grid_size']}: {p['grid_seconds']:.1f} s",
        ]
    lines.append(
        f"pipeline extract {pipeline['extract']['images_per_s']:.0f} img/s, "
        f"probe acc {pipeline['probe']['accuracy']:.4f} (C={pipeline['probe']['C']:.3g})"
    )
    for strategy in ("full", "scratch"):
        if strategy in pipeline:
            row = pipeline[strategy]
            lines.append(
                f"pipeline {strategy:<8} test acc {row['accuracy']:.4f}  "
                f"{row['train_images_per_s']:.0f} img/s  {row['seconds']:.0f} s"
            )
    lines.append(f"total {total_s:.0f} s (bench and pipeline)")
    return "\n".join(lines)


@cli
def main(argv: list[str] | None = None) -> None:
    start = time.perf_counter()
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    params = load_params(args.params, args.overrides)
    device = backbone.resolve_device("auto")
    bench = None
    if not args.skip_bench:
        bench_argv = ["--tiny" if args.tiny else "--full", "--out", str(args.out / "bench.json")]
        bench_argv += ["--params", str(args.params)]
        for flag, value in [
            ("--data-path", args.data_path),
            ("--grid-size", args.grid_size),
            ("--compare-max-iter", args.compare_max_iter),
            ("--image-size", TINY_SIZE if args.tiny else None),
        ]:
            if value is not None:
                bench_argv += [flag, str(value)]
        for override in args.overrides:  # the bench measures the pipeline's configuration
            bench_argv += ["-S", override]
        bench_run.main(bench_argv)
        bench = io.read_json(args.out / "bench.json")
    pipeline = run_pipeline(pipeline_params(params, args), device, args.out / "pipeline.json")
    print(summary(bench, pipeline, time.perf_counter() - start))


if __name__ == "__main__":
    main()
