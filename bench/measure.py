"""Timed measurements: model-only ceilings, the project's own code paths, the usual loader
path, and the probe against scikit-learn.

Every function takes models, arrays and params and returns plain numbers; bench.speed
decides what to measure and reports it. The project's paths are the library's functions
themselves (extract_features, train_strategy, fit_probe); only the ceilings and the
references they are compared with are written here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import timm
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from torch import nn

from bench.common import timed
from transferlab.data.layout import LabelledImages
from transferlab.device import feed
from transferlab.evaluation.probes import linear
from transferlab.models import backbone, strategies
from transferlab.models.backbone import InputConfig
from transferlab.models.extract import extract_features
from transferlab.models.training import train_strategy
from transferlab.params import Finetune, Model

WARMUP_STEPS = 3  # cudnn autotuning and allocator growth happen here, outside the timing
SPEED_STRATEGY = "full"  # the strategy whose training is timed: every layer trains


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
    size: int,
    steps: int,
    num_classes: int,
    config: Finetune,
    device: torch.device,
) -> float:
    """Images/s of forward, backward and AdamW step alone, random input on the device."""
    batch_size = config.batch_size
    feed.setup_device(device)
    own = getattr(config, SPEED_STRATEGY)
    model = model.to(device, memory_format=torch.channels_last)
    strategies.set_train_mode(model, own.bn)  # as the stage trains it
    groups = strategies.param_groups(model, SPEED_STRATEGY, config, own.lr[0])
    optimizer = strategies.optimizer(groups, device)
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
    """(features, images/s) of the extract stage's extract_features, after a warm-up batch."""
    extract_features(model, images[:batch_size], config, batch_size=batch_size, device=device)
    features, seconds = timed(
        device,
        lambda: extract_features(model, images, config, batch_size=batch_size, device=device),
    )
    return features, len(images) / seconds


def finetuning(
    train: LabelledImages,
    val: LabelledImages,
    *,
    model_config: Model,
    config: Finetune,
    num_classes: int,
    steps: int,
    device: torch.device,
) -> float:
    """Images/s of the finetune stage's train_strategy over `steps` batches of real data
    (one epoch; train_model times its own steps, so building the model is not counted)."""
    one_epoch = dataclasses.replace(config, epochs=1)

    def run(n_steps: int) -> float:
        part = train.subset(np.arange(min(len(train), n_steps * config.batch_size)))
        trained = train_strategy(
            SPEED_STRATEGY,
            model_config=model_config,
            config=one_epoch,
            train=part,
            val=val,
            num_classes=num_classes,
            device=device,
        )
        return trained.result.images_per_s

    if device.type == "cuda":
        run(WARMUP_STEPS)  # tunes cudnn for the training shapes
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


def probe_against_sklearn(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    C: float,
    max_iter: int,
    device: torch.device,
) -> dict[str, float]:
    """The probe's L-BFGS (transferlab.evaluation.probes.linear) against scikit-learn's lbfgs, one
    fit each at the same C on the same standardised features."""
    x, y = torch.from_numpy(train_x).to(device), torch.from_numpy(train_y).to(device)
    mean, scale = linear.standardise(x)
    x = (x - mean) / scale
    (weight, bias, n_iter), seconds = timed(
        device,
        lambda: linear.fit_logistic(
            x, y, C=C, num_classes=int(train_y.max()) + 1, max_iter=max_iter
        ),
    )
    test = (torch.from_numpy(test_x).to(device) - mean) / scale
    ours = linear.accuracy(test, torch.from_numpy(test_y).to(device), weight, bias)
    host_x, host_test = x.cpu().numpy(), test.cpu().numpy()
    reference = LogisticRegression(C=C, max_iter=max_iter)
    start = time.perf_counter()
    reference.fit(host_x, train_y)
    sk_seconds = time.perf_counter() - start
    return {
        "fit_seconds": seconds,
        "accuracy": ours,
        "iterations": n_iter,
        "sklearn_fit_seconds": sk_seconds,
        "sklearn_accuracy": float(reference.score(host_test, test_y)),
        "sklearn_iterations": int(reference.n_iter_.max()),
    }
