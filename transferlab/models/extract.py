"""Embed prepared splits with a frozen backbone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from transferlab import io
from transferlab.data import layout
from transferlab.device import distributed, guards, host
from transferlab.models import backbone
from transferlab.models.backbone import InputConfig
from transferlab.params import Model, Params
from transferlab.timeline import StageClock

if TYPE_CHECKING:
    from transferlab.tracking import Stage


@dataclass(frozen=True)
class Embedded:
    """What one extraction did: images embedded, seconds spent embedding, feature width and
    the backbone's parameter count."""

    images: int
    seconds: float
    feature_dim: int
    parameters: int


def extract_features(
    model: nn.Module,
    images: np.ndarray,
    config: InputConfig,
    *,
    batch_size: int,
    device: torch.device,
    desc: str = "extract",
    clock: StageClock | None = None,
) -> np.ndarray:
    """Pooled pre-logit features (N, D) float32 for uint8 images (N, H, W, C)."""
    # create_backbone(num_classes=0) leaves timm's pooled pre-logits as the output.
    # On CUDA OOM the split is redone with half the batch (padding keeps outputs the same).
    return guards.OomBackoff(batch_size, desc=desc).run(
        lambda size: backbone.forward_batches(
            model, images, config, batch_size=size, device=device, desc=desc, clock=clock
        )
    )


def frozen_backbone(
    name: str, weights: str, *, seed: int, device: torch.device, candidate: str | None = None
) -> nn.Module:
    """The feature extractor, the same on every rank; `seed` makes random init repeatable.
    `candidate`, its key under params.yaml's backbones, names it in errors."""
    # timm's init draws from torch's global RNG: seed it in a scope so 'none' is repeatable.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = backbone.create_backbone(name, weights, candidate=candidate)
    return distributed.broadcast_module(model, device)


def embed_splits(
    model: nn.Module,
    config: InputConfig,
    *,
    source: Path,
    out: Path,
    batch_size: int,
    device: torch.device,
    clock: StageClock | None = None,
) -> Embedded:
    """Embed every prepared split of `source` into `out` (features and labels per split).

    Under torchrun each rank embeds its shard and rank 0 gathers and writes.
    """
    images_done, seconds = 0, 0.0
    for split in layout.SPLITS:
        part = layout.load_prepared(source, split)
        start, stop = distributed.shard_bounds(len(part), block=batch_size)
        began = time.perf_counter()
        local = extract_features(
            model,
            part.images[start:stop],
            config,
            batch_size=batch_size,
            device=device,
            desc=f"extract {split} [{start}:{stop}]",
            clock=clock,
        )
        features = distributed.gather_rows(local, len(part), block=batch_size, device=device)
        seconds += time.perf_counter() - began
        images_done += len(part)
        if distributed.is_main():
            layout.save_features(out, split, features, part.labels)
    parameters = sum(p.numel() for p in model.parameters())
    return Embedded(images_done, seconds, int(model.num_features), parameters)


def extract_to(
    params: Params, recorder: Stage, spec: Model, out: Path, *, report_as: str | None
) -> str | None:
    """The extract stages' work: every split's features with `spec`'s frozen backbone into
    `out`, published through `recorder` (a publish.Stage), the extraction report to
    paths.extract_report as `report_as` (None: timing only). Returns the stage's summary on
    rank 0, None on the others."""
    with distributed.process_group(host.resolve_device(params.extract.device)) as device:
        model = frozen_backbone(
            spec.name, spec.weights, seed=spec.seed, device=device, candidate=report_as
        )
        config = backbone.spec_input(model, spec, layout.stored_side(params.paths.prepared))
        with guards.deterministic(device):
            done = embed_splits(
                model,
                config,
                source=params.paths.prepared,
                out=out,
                batch_size=params.extract.batch_size,
                device=device,
                clock=recorder.clock,
            )
        if not distributed.is_main():
            return None
        recorder.clock.computed()  # the steady rate: past the first batch, before writing
        report = extraction_report(report_as, spec, done, config.size, device, recorder.clock)
        kept = {}  # a candidate's report joins the comparison; the reference's is its timing
        if report_as is not None:
            path = io.backbone_file(params.paths.extract_report, report_as)
            kept = {"record": report, "record_path": path}
        recorder.publish(**kept, metrics={"extract_images_per_s": report["images_per_s"]})
    return f"extracted {done.images} images at {report['images_per_s']} img/s on {device}"


def extraction_report(key: str | None, spec: Model, done, size, device, clock: StageClock) -> dict:
    """What the comparison reads of an extraction: size, width, input, speed and memory."""
    return {
        "backbone": key,
        "model": spec.name,
        "weights": spec.weights,
        "parameters": done.parameters,
        "feature_dim": done.feature_dim,
        "input_size": size,
        "device": str(device),
        "processes": distributed.world_size(),
        "images": done.images,
        "seconds": round(done.seconds, 3),
        "images_per_s": round(done.images / done.seconds, 1),
        "steady_images_per_s": clock.parts()["steady_items_per_s"],
        "peak_rss_mb": round(host.peak_rss_mb(), 1),
    }
