"""Embed prepared splits with a frozen backbone."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transferlab.data import prepared
from transferlab.device import distributed, guards
from transferlab.models import backbone
from transferlab.models.backbone import InputConfig
from transferlab.timeline import StageClock


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


def frozen_backbone(name: str, weights: str, *, seed: int, device: torch.device) -> nn.Module:
    """The feature extractor, the same on every rank; `seed` makes random init repeatable."""
    # timm's init draws from torch's global RNG: seed it in a scope so 'none' is repeatable.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = backbone.create_backbone(name, weights)
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
    for split in prepared.SPLITS:
        part = prepared.load_prepared(source, split)
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
            prepared.save_features(out, split, features, part.labels)
    parameters = sum(p.numel() for p in model.parameters())
    return Embedded(images_done, seconds, int(model.num_features), parameters)
