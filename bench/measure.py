"""Timed measurements: model-only ceilings, the project's own code paths, the usual loader path.

Every function takes models, arrays and sizes and returns plain numbers; bench.run decides
what to measure and reports it. Nothing here imports dvc or mlflow.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import timm
import torch
from PIL import Image
from torch import nn

from transferlab.models import backbone
from transferlab.device import feed
from transferlab.models import strategies
from transferlab.models import training
from transferlab.models.backbone import InputConfig
from transferlab.data.prepared import LabelledImages
from transferlab.models.extract import extract_features
from transferlab.params import Finetune

WARMUP_STEPS = 3  # cudnn autotuning and allocator growth happen here, outside the timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], object]) -> tuple[object, float]:
    """(result, seconds) with the device drained before and after."""
    sync(device)
    start = time.perf_counter()
    result = work()
    sync(device)
    return result, time.perf_counter() - start


def random_input(batch_size: int, size: int, device: torch.device) -> torch.Tensor:
    x = torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    return x.to(device).contiguous(memory_format=torch.channels_last)


def inference_ceiling(
    model: nn.Module, *, batch_size: int, size: int, batches: int, device: torch.device
) -> float:
    """Images/s of the model alone in eval mode, random input already on the device."""
    feed.setup_device(device)
    model = model.eval().to(device, memory_format=torch.channels_last)
    x = random_input(batch_size, size, device)

    @torch.inference_mode()
    def run(steps: int) -> None:
        with backbone.autocast(device):
            for _ in range(steps):
                model(x)

    run(WARMUP_STEPS)
    _, seconds = timed(device, lambda: run(batches))
    return batches * batch_size / seconds


def training_ceiling(
    model: nn.Module,
    *,
    batch_size: int,
    size: int,
    steps: int,
    num_classes: int,
    config: Finetune,
    device: torch.device,
) -> float:
    """Images/s of forward, backward and AdamW step alone, random input on the device."""
    feed.setup_device(device)
    model = model.train().to(device, memory_format=torch.channels_last)
    optimizer = strategies.optimizer(strategies.param_groups(model, "full", config), device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    x = random_input(batch_size, size, device)
    y = torch.randint(num_classes, (batch_size,), generator=torch.Generator().manual_seed(0))
    y = y.to(device)

    def run(count: int) -> None:
        for _ in range(count):
            with backbone.autocast(device):
                loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    run(WARMUP_STEPS)
    _, seconds = timed(device, lambda: run(steps))
    return steps * batch_size / seconds


def extraction(
    model: nn.Module,
    images: np.ndarray,
    config: InputConfig,
    *,
    batch_size: int,
    device: torch.device,
) -> tuple[np.ndarray, float]:
    """(features, images/s) of the project's extract path, after one warm-up batch."""
    extract_features(model, images[:batch_size], config, batch_size=batch_size, device=device)
    features, seconds = timed(
        device,
        lambda: extract_features(model, images, config, batch_size=batch_size, device=device),
    )
    return features, len(images) / seconds


def finetuning(
    model: nn.Module,
    train: LabelledImages,
    val: LabelledImages,
    config: InputConfig,
    *,
    finetune_config: Finetune,
    steps: int,
    device: torch.device,
) -> float:
    """Images/s of the project's train_model loop over `steps` batches of real data."""
    batch = finetune_config.batch_size
    one_epoch = dataclasses.replace(finetune_config, epochs=1)

    def run(n_steps: int) -> float:
        part = train.subset(np.arange(min(len(train), n_steps * batch)))
        return training.train_model(
            model,
            train=part,
            val=val,
            input_cfg=config,
            config=one_epoch,
            device=device,
            param_groups=strategies.param_groups(model, "full", one_epoch),
        ).images_per_s

    if device.type == "cuda":
        run(WARMUP_STEPS)  # tunes cudnn for the training shapes; train_model times itself
    return run(steps)


class PilImages(torch.utils.data.Dataset):
    """uint8 arrays served the usual way: one PIL image at a time through timm transforms."""

    def __init__(self, images: np.ndarray, transform: Callable) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(Image.fromarray(self.images[i].squeeze(-1)).convert("RGB"))


def reference_loader(
    model: nn.Module,
    images: np.ndarray,
    config: InputConfig,
    *,
    batch_size: int,
    workers: int,
    device: torch.device,
) -> float:
    """Images/s of PIL + timm eval transforms + DataLoader feeding the same model."""
    transform = timm.data.create_transform(
        input_size=(3, config.size, config.size),
        interpolation=config.interpolation,
        mean=config.mean,
        std=config.std,
        crop_pct=1.0,
    )
    loader = torch.utils.data.DataLoader(
        PilImages(images, transform),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    model = model.eval().to(device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def run() -> None:
        with backbone.autocast(device):
            for x in loader:
                x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                model(x)

    _, seconds = timed(device, run)  # worker start-up is part of the usual path's cost
    return len(images) / seconds
