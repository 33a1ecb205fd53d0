"""python -m bench: model-only ceilings against the project's own code paths, in one run.

Defaults come from params.yaml; flags only override them. Imports neither dvc nor mlflow,
so it runs on a bare GPU box with torch, timm, numpy and scikit-learn.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import measure, probe
from bench.report import environment, table
from transferlab.models import backbone
from transferlab.data import prepared as data
from transferlab.device import feed
from transferlab import io
from transferlab.data import prepare
from transferlab.models import strategies
from transferlab.data.prepared import LabelledImages
from transferlab.errors import cli
from transferlab.device.host import peak_rss_mb
from transferlab.params import PARAMS_FILE, Params, load_params

BENCH_REPORT = Path("reports/bench.json")
LOADER_MAX_WORKERS = 16


@dataclass(frozen=True)
class Sizes:
    """How much each measurement runs; full_data means all 70k images at the model's size."""

    split_images: int | None  # cap per split for extraction and the probe; None keeps all
    speed_batches: int  # extraction batches per speed sample (pipeline and ceiling alike)
    finetune_steps: int  # training steps per speed sample (pipeline and ceiling alike)
    repeats: int  # interleaved (ceiling, pipeline) sample pairs; the best of each is kept
    loader_batches: int
    full_data: bool


# Best-of-N over interleaved samples: on a shared machine other load only ever slows a
# sample down, so the fastest one is the closest to the code's own speed, and pipeline and
# ceiling are sampled alternately so a burst of load cannot favour either side.
SIZES = {
    "tiny": Sizes(96, 1, 1, 1, 1, False),  # for tests: seconds, not figures
    "quick": Sizes(2000, 4, 10, 3, 4, False),  # CPU: a few minutes on 2 cores
    "full": Sizes(None, 50, 300, 5, 20, True),  # GPU: full 60k/10k at 224 px
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags override params.yaml; none of their defaults repeats a param."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    for name in SIZES:
        mode.add_argument(f"--{name}", dest="size", action="store_const", const=name)
    parser.add_argument("--device", help="auto | cpu | cuda (default: extract.device)")
    parser.add_argument("--grid-size", type=int, help="C values in the grid (default: C_num)")
    parser.add_argument("--compare-max-iter", type=int, help="single-C fits (default: max_iter)")
    parser.add_argument("--sklearn-grid", action="store_true", help="also time sklearn's grid")
    parser.add_argument("--data-path", help="Fashion-MNIST .gz folder (default: data.path)")
    parser.add_argument("--backbone", help="timm model name (default: backbone.name)")
    parser.add_argument("--weights", help="bundled | hub | none | path (default: params)")
    parser.add_argument("--image-size", type=int, help="default: backbone.image_size")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    add_overrides(parser)
    parser.add_argument("--out", type=Path, default=BENCH_REPORT)
    return parser.parse_args(argv)


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """-S/--set KEY=VALUE, repeatable, read as `dvc exp run -S` reads it (into .overrides)."""
    parser.add_argument(
        "-S",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param, as `dvc exp run -S` does (repeatable)",
    )


def configure(params: Params, args: argparse.Namespace, sizes: Sizes) -> Params:
    """params.yaml with the command line's overrides applied."""
    data_cfg = params.data
    if args.data_path:
        data_cfg = dataclasses.replace(data_cfg, path=args.data_path)
    if sizes.full_data:
        data_cfg = dataclasses.replace(data_cfg, train_per_class=None, test_per_class=None)
    image_size = params.backbone.image_size if not sizes.full_data else None
    backbone_cfg = dataclasses.replace(
        params.backbone,
        name=args.backbone or params.backbone.name,
        weights=args.weights or params.backbone.weights,
        image_size=args.image_size or image_size,
    )
    return dataclasses.replace(params, data=data_cfg, backbone=backbone_cfg)


class _NoTracking:
    """The prepare stage's recorder, minus MLflow: the bench runs without it."""

    def log_artifact(self, path: object, artifact_path: str | None = None) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        pass


def prepare_in_memory(params: Params) -> dict[str, LabelledImages]:
    """Run the prepare stage's own code into a temporary folder and load the splits."""
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as work:
        root = Path(work)
        paths = dataclasses.replace(
            params.paths,
            prepared=root / "prepared",
            data_card=root / "data_card.json",
            rejects=root / "rejects.json",
            duplicates=root / "duplicates.json",
        )
        prepare.prepare(params.data, paths, _NoTracking())
        return {s: data.load_prepared(paths.prepared, s, mmap=False) for s in data.SPLITS}


def load_splits(params: Params, sizes: Sizes) -> dict[str, LabelledImages]:
    """The prepared folder when present (and not full), else prepared here from the source."""
    if not sizes.full_data and io.split_file(params.paths.prepared, "train", "images").is_file():
        splits = {s: data.load_prepared(params.paths.prepared, s, mmap=False) for s in data.SPLITS}
    else:
        splits = prepare_in_memory(params)
    if sizes.split_images is None:
        return splits
    return {
        s: part.subset(np.arange(min(len(part), sizes.split_images))) for s, part in splits.items()
    }


def run_bench(
    params: Params,
    sizes: Sizes,
    device: torch.device,
    *,
    grid_size: int,
    compare_max_iter: int,
    sklearn_grid: bool,
) -> dict:
    """Every measurement, in one process on one device; returns the bench.json content."""
    splits = load_splits(params, sizes)
    num_classes = int(splits["train"].labels.max()) + 1
    name, weights = params.backbone.name, params.backbone.weights
    model = backbone.create_backbone(name, weights)
    cfg = backbone.input_config(model, params.backbone.image_size)
    batch = params.extract.batch_size
    report: dict = {"environment": environment(device), "sizes": dataclasses.asdict(sizes)}

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
    report["extract"] = {
        "images_per_s": max(pipeline),
        "ceiling_images_per_s": max(ceiling),
        "samples": {"pipeline": pipeline, "ceiling": ceiling},
        "all_splits_images": images,
        "all_splits_images_per_s": images / seconds,
        "peak_rss_mb": rss,
        "batch_size": batch,
        "input_size": cfg.size,
    }

    train_batch = params.finetune.batch_size
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(params.finetune.seed)
        tuned = strategies.build_model("full", name, weights, num_classes)
        ceiling_model = backbone.create_backbone(name, "none", num_classes=num_classes)
    val = splits["val"].subset(np.arange(min(len(splits["val"]), train_batch)))
    pipeline, ceiling = [], []
    for _ in range(sizes.repeats):
        ceiling.append(
            measure.training_ceiling(
                ceiling_model,
                batch_size=train_batch,
                size=cfg.size,
                steps=sizes.finetune_steps,
                num_classes=num_classes,
                config=params.finetune,
                device=device,
            )
        )
        pipeline.append(
            measure.finetuning(
                tuned,
                splits["train"],
                val,
                cfg,
                finetune_config=params.finetune,
                steps=sizes.finetune_steps,
                device=device,
            )
        )
    report["finetune"] = {
        "images_per_s": max(pipeline),
        "ceiling_images_per_s": max(ceiling),
        "samples": {"pipeline": pipeline, "ceiling": ceiling},
        "batch_size": train_batch,
    }
    del tuned, ceiling_model

    report["probe"] = probe.probe_report(
        params,
        splits,
        features,
        device,
        grid_size=grid_size,
        compare_max_iter=compare_max_iter,
        sklearn_grid=sklearn_grid,
    )
    loader_images = splits["train"].images[: sizes.loader_batches * batch]
    workers = min(feed.usable_cpus(), LOADER_MAX_WORKERS)
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


@cli
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params, args.overrides)
    device = backbone.resolve_device(args.device or params.extract.device)
    sizes = SIZES[args.size or ("full" if device.type == "cuda" else "quick")]
    params = configure(params, args, sizes)
    report = run_bench(
        params,
        sizes,
        device,
        grid_size=args.grid_size or params.probe.C_num,
        compare_max_iter=args.compare_max_iter or params.probe.max_iter,
        sklearn_grid=args.sklearn_grid,
    )
    report["mode"] = args.size or ("full" if device.type == "cuda" else "quick")
    io.write_json(args.out, report)
    print(table(report))
    print(f"wrote {args.out}")
