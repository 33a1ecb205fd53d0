"""python -m bench speed: model-only ceilings against the project's own code paths.

Each measurement runs where its params say (extract.device for extraction and the loader,
finetune.device for training, probe.device for the probe; --device sets all three), on
the data params.data describes, prepared by the prepare stage's own code.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from bench import measure
from bench.common import benched_model, environment, prepare_splits, timed
from transferlab import io
from transferlab.data.layout import LabelledImages
from transferlab.device.host import peak_rss_mb, resolve_device, usable_cpus
from transferlab.evaluation.probes.probe import C_grid, fit_probe, resolve_backend
from transferlab.models import backbone
from transferlab.models.extract import frozen_backbone
from transferlab.params import Params

LOADER_MAX_WORKERS = 16


@dataclass(frozen=True)
class Sizes:
    """How much each measurement runs. What data and model it runs on is params' (-S)."""

    split_images: int | None  # cap per split for extraction and the probe; None keeps all
    speed_batches: int  # extraction batches per speed sample (pipeline and ceiling alike)
    finetune_steps: int  # training steps per speed sample (pipeline and ceiling alike)
    repeats: int  # interleaved (ceiling, pipeline) sample pairs; the best of each is kept
    loader_batches: int


# Best-of-N over interleaved samples: on a shared machine other load only ever slows a
# sample down, so the fastest one is the closest to the code's own speed, and pipeline and
# ceiling are sampled alternately so a burst of load cannot favour either side.
SIZES = {
    "tiny": Sizes(96, 1, 1, 1, 1),  # for tests: seconds, not figures
    "quick": Sizes(2000, 4, 10, 3, 4),  # CPU: a few minutes on 2 cores
    "full": Sizes(None, 50, 300, 5, 20),  # GPU: every prepared image
}


def cap(splits: dict[str, LabelledImages], images: int | None) -> dict[str, LabelledImages]:
    if images is None:
        return splits
    return {s: part.subset(np.arange(min(len(part), images))) for s, part in splits.items()}


def measure_extraction(params: Params, sizes: Sizes, splits: dict, device: torch.device):
    """(report section, features per split, model, input config)."""
    spec = benched_model(params)
    model = frozen_backbone(spec.name, spec.weights, seed=spec.seed, device=device)
    cfg = backbone.spec_input(model, spec, splits["train"].images.shape[1])
    batch = params.extract.batch_size
    features, seconds = {}, 0.0
    for split, part in splits.items():  # the whole pass, for the probe's features
        features[split], rate = measure.extraction(
            model, part.images, cfg, batch_size=batch, device=device
        )
        seconds += len(part) / rate
    images = sum(len(part) for part in splits.values())
    rss = peak_rss_mb()  # process peak so far: data, model and one extraction pass
    sample = splits["train"].images[: sizes.speed_batches * batch]
    pipeline, ceiling = [], []
    for _ in range(sizes.repeats):
        ceiling.append(
            measure.inference_ceiling(
                model, batch_size=batch, size=cfg.size, batches=sizes.speed_batches, device=device
            )
        )
        pipeline.append(measure.extraction(model, sample, cfg, batch_size=batch, device=device)[1])
    section = {
        "images_per_s": max(pipeline),
        "ceiling_images_per_s": max(ceiling),
        "samples": {"pipeline": pipeline, "ceiling": ceiling},
        "all_splits_images": images,
        "all_splits_images_per_s": images / seconds,
        "peak_rss_mb": rss,
        "batch_size": batch,
        "input_size": cfg.size,
        "device": str(device),
    }
    return section, features, model, cfg


def measure_finetuning(params: Params, sizes: Sizes, splits: dict, size: int) -> dict:
    device = resolve_device(params.finetune.device)
    config = params.finetune
    num_classes = int(splits["train"].labels.max()) + 1
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        ceiling_model = backbone.create_backbone(
            benched_model(params).name, "none", num_classes=num_classes
        )
    val = splits["val"].subset(np.arange(min(len(splits["val"]), config.batch_size)))
    pipeline, ceiling = [], []
    for _ in range(sizes.repeats):
        ceiling.append(
            measure.training_ceiling(
                ceiling_model,
                size=size,
                steps=sizes.finetune_steps,
                num_classes=num_classes,
                config=config,
                device=device,
            )
        )
        pipeline.append(
            measure.finetuning(
                splits["train"],
                val,
                model_config=benched_model(params),
                config=config,
                num_classes=num_classes,
                steps=sizes.finetune_steps,
                device=device,
            )
        )
    return {
        "images_per_s": max(pipeline),
        "ceiling_images_per_s": max(ceiling),
        "samples": {"pipeline": pipeline, "ceiling": ceiling},
        "batch_size": config.batch_size,
        "strategy": measure.SPEED_STRATEGY,
        "device": str(device),
    }


def measure_probe(
    params: Params,
    splits: dict[str, LabelledImages],
    features: dict[str, np.ndarray],
    *,
    compare_max_iter: int,
    sklearn_grid: bool,
) -> dict:
    """The probe stage's grid (time, chosen C), then one fit at that C: ours vs sklearn."""
    device = resolve_device(params.probe.device)
    grid = C_grid(params.probe)
    backend = resolve_backend(params.probe.backend, device)
    fit_args = dict(
        train_features=features["train"],
        train_labels=splits["train"].labels,
        val_features=features["val"],
        val_labels=splits["val"].labels,
        grid=grid,
        max_iter=params.probe.max_iter,
        device=device,
    )
    fit, seconds = timed(device, lambda: fit_probe(**fit_args, backend=backend))
    report = {
        "backend": backend,
        "device": str(device),
        "grid_size": len(grid),
        "grid_seconds": seconds,
        "C": fit.C,
        "grid_test_accuracy": float(
            (fit.predict_proba(features["test"]).argmax(1) == splits["test"].labels).mean()
        ),
    }
    if sklearn_grid:
        _, report["sklearn_grid_seconds"] = timed(
            device, lambda: fit_probe(**fit_args, backend="sklearn")
        )
    single = measure.probe_against_sklearn(
        features["train"],
        splits["train"].labels,
        features["test"],
        splits["test"].labels,
        C=fit.C,
        max_iter=compare_max_iter,
        device=device,
    )
    report.update(single, max_iter=compare_max_iter)
    report["speedup_over_sklearn"] = single["sklearn_fit_seconds"] / single["fit_seconds"]
    report["accuracy_gap_points"] = 100 * (single["accuracy"] - single["sklearn_accuracy"])
    return report


def run_speed(
    params: Params, sizes: Sizes, *, compare_max_iter: int, sklearn_grid: bool = False
) -> dict:
    """Every measurement, in one process; returns the bench.json content."""
    device = resolve_device(params.extract.device)
    splits = cap(prepare_splits(params), sizes.split_images)
    report: dict = {"environment": environment(device), "sizes": dataclasses.asdict(sizes)}
    report["extract"], features, model, cfg = measure_extraction(params, sizes, splits, device)
    report["finetune"] = measure_finetuning(params, sizes, splits, cfg.size)
    report["probe"] = measure_probe(
        params, splits, features, compare_max_iter=compare_max_iter, sklearn_grid=sklearn_grid
    )
    batch = params.extract.batch_size
    loader_images = splits["train"].images[: sizes.loader_batches * batch]
    workers = min(usable_cpus(), LOADER_MAX_WORKERS)
    report["reference_loader"] = {
        "images_per_s": measure.reference_loader(
            model, loader_images, cfg, batch_size=batch, workers=workers, device=device
        ),
        "workers": workers,
        "images": len(loader_images),
    }
    for part in ("extract", "finetune"):
        section = report[part]
        section["ratio"] = section["images_per_s"] / section["ceiling_images_per_s"]
    report["extract"]["speedup_over_reference_loader"] = (
        report["extract"]["images_per_s"] / report["reference_loader"]["images_per_s"]
    )
    report["device"] = report["environment"]["device"]
    return report


def table(report: dict) -> str:
    """The figures people compare, one row each."""
    e, f, p, r = report["extract"], report["finetune"], report["probe"], report["reference_loader"]
    rows = [
        ("device", report["device"], f"{report['mode']} mode"),
        (
            "extract img/s (ceiling, ratio)",
            f"{e['images_per_s']:.0f}",
            f"{e['ceiling_images_per_s']:.0f}, {e['ratio']:.2f}x",
        ),
        (
            "finetune img/s (ceiling, ratio)",
            f"{f['images_per_s']:.0f}",
            f"{f['ceiling_images_per_s']:.0f}, {f['ratio']:.2f}x",
        ),
        ("PIL+DataLoader img/s (workers)", f"{r['images_per_s']:.0f}", f"{r['workers']}"),
        ("extract peak RSS MiB", f"{e['peak_rss_mb']:.0f}", ""),
        (
            f"probe fit s ({p['backend']}) / sklearn",
            f"{p['fit_seconds']:.2f}",
            f"{p['sklearn_fit_seconds']:.2f}, {p['speedup_over_sklearn']:.1f}x faster",
        ),
        ("probe test acc / sklearn", f"{p['accuracy']:.4f}", f"{p['sklearn_accuracy']:.4f}"),
        (
            f"probe grid of {p['grid_size']} s",
            f"{p['grid_seconds']:.2f}",
            f"sklearn {p['sklearn_grid_seconds']:.2f}" if "sklearn_grid_seconds" in p else "",
        ),
    ]
    width = max(len(label) for label, _, _ in rows)
    return "\n".join(f"{label:<{width}}  {value:>10}  {extra}" for label, value, extra in rows)


def run(params: Params, args: argparse.Namespace) -> dict:
    """The sub-command: --tiny/--quick/--full, else full on CUDA and quick elsewhere."""
    device = resolve_device(params.extract.device)
    mode = args.size or ("full" if device.type == "cuda" else "quick")
    report = run_speed(
        params,
        SIZES[mode],
        compare_max_iter=args.compare_max_iter or params.probe.max_iter,
        sklearn_grid=args.sklearn_grid,
    )
    report["mode"] = mode
    io.write_json(args.out, report)
    print(table(report))
    print(f"wrote {args.out}")
    return report
