"""The training loop every fine-tuning stage shares: device-side augmentation, AdamW with a
one-cycle schedule, early stopping, the weights kept (the last epoch's or the best on val);
and test-time prediction."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from transferlab.data.layout import LabelledImages
from transferlab.device import distributed, feed, guards, host
from transferlab.evaluation.probes import grid_choice
from transferlab.models import backbone, depthwise, strategies
from transferlab.models.backbone import InputConfig
from transferlab.params import Finetune, Model
from transferlab.timeline import StageClock

log = logging.getLogger(__name__)
MAX_SHIFT = 0.125  # random translation, as a fraction of the image side
SCALE_RANGE = (0.9, 1.1)
ERASE_AREA = (0.02, 1 / 3)  # random erasing: share of the image, and aspect ratio range
ERASE_ASPECT = (0.3, 1 / 0.3)
LOSS_CHECK_EVERY = 50  # CUDA: steps between host-side checks for non-finite values
STARTING_BATCHES = 8  # batches that measure the epoch-0 training loss (512 images at 64)
STARTING_SEED_OFFSET = 7919  # its own shuffle and augmentation streams, apart from training's


@dataclass
class TrainResult:
    """The kept weights (finetune.keep) and the per-epoch history."""

    state_dict: dict[str, torch.Tensor]
    kept_epoch: int
    val_accuracy: float | None  # the kept weights'; None: trained without val
    history: list[dict[str, float | None]]
    images_per_s: float
    train_seconds: float = 0.0  # the epochs' wall time: building and epoch 0 aside


@dataclass
class Trained:
    """A strategy's model holding its kept weights, and how it got there."""

    model: nn.Module
    input_cfg: InputConfig
    result: TrainResult
    applied: dict  # what strategies.prepare did (frozen modules, probe head), for the record
    test_probs: np.ndarray | None = None  # (N, K) on `test`, when one was given (rank 0 only)
    adapter: dict[str, np.ndarray] | None = None  # lora: what it trained, saved on its own


def train_strategy(
    strategy: str,
    *,
    model_config: Model,
    config: Finetune,
    train: LabelledImages,
    val: LabelledImages | None,
    num_classes: int,
    device: torch.device,
    probe_dir: Path | None = None,
    desc: str | None = None,
    test: LabelledImages | None = None,
    predict_batch_size: int | None = None,
    clock: StageClock | None = None,
    rates: tuple[float, ...] | None = None,
) -> Trained:
    """Train `strategy` at the peak learning rate chosen on val from `rates` (default: the
    strategy's `lr` list; search_rates), every fit from the same seeded weights (train_at).
    `probe_dir` is where lpft finds the probe's head. With `test`, the kept model's class
    probabilities on it are kept too (on rank 0: the other ranks hold the same weights),
    predicted in batches of `predict_batch_size` (default: the training batch size): only
    the kept model ever sees test, and never its labels.
    """
    rates = tuple(rates or getattr(config, strategy).lr)
    if val is None and len(rates) > 1:
        raise ValueError("without val nothing chooses among learning rates: give one")
    fit = functools.partial(
        train_at,
        strategy,
        model_config=model_config,
        data=(train, val),
        num_classes=num_classes,
        device=device,
        probe_dir=probe_dir,
        clock=clock,
    )
    label = desc or strategy
    search, kept = search_rates(fit, rates, config, val, label) if len(rates) > 1 else ({}, None)
    if kept is None:  # the chosen rate, trained for the whole schedule
        kept = fit(search.get("chosen", rates[0]), config=config, desc=label)
    if search:
        kept.applied["lr_search"] = search
    kept.model.load_state_dict(kept.result.state_dict)
    kept.adapter = strategies.finish(kept.model, strategy)
    if kept.adapter is not None:  # the checkpoint holds the merged weights: a plain timm model
        state = {k: v.detach().to("cpu", copy=True) for k, v in kept.model.state_dict().items()}
        kept.result = dataclasses.replace(kept.result, state_dict=state)
    if test is not None and distributed.is_main():
        kept.test_probs = predict_proba(
            kept.model,
            test.images,
            kept.input_cfg,
            batch_size=predict_batch_size or config.batch_size,
            device=device,
        )
    return kept


def search_rates(
    fit: Callable[..., Trained],
    rates: tuple[float, ...],
    config: Finetune,
    val: LabelledImages,
    label: str,
) -> tuple[dict, Trained | None]:
    """A low-fidelity search: each rate trained for the first finetune.search_epochs
    (capped at epochs) of the whole one-cycle schedule, scored on val as its run will be
    kept (finetune.keep: its last epoch's val accuracy, or its best epoch's). A
    trial is the start of the run it stands for, so it reaches the peak rate and keeps it
    as long: a rate that diverges there fails its trial (a short schedule of its own would
    decay before it could). The winner is grid_choice's middle of the rates tied at the
    best, in list order.

    `fit(lr, config=, desc=)` trains one rate (train_at). Returns the record (rates tried,
    each one's val accuracy, the winner, the cost in seconds and epochs) and, where the
    search ran the whole schedule, the winner's fit, which needs no retraining; None
    otherwise. Only fits tied at the best so far are held.
    """
    epochs = min(config.search_epochs, config.epochs)
    whole = epochs == config.epochs
    start = time.perf_counter()
    tried, correct, top = [], {}, {}
    for lr in rates:
        desc = f"{label} lr {lr:g}" + ("" if whole else " (search)")
        trained = fit(lr, config=config, desc=desc, stop_after=epochs)
        tried.append({"lr": lr, **lr_result(trained.result)})
        correct[lr] = round(trained.result.val_accuracy * len(val))  # counts: == is exact
        if whole:  # the winner is among the fits tied at the best so far
            best = max(correct.values())
            top = {r: t for r, t in (*top.items(), (lr, trained)) if correct[r] == best}
    chosen = grid_choice.middle_of_best(rates, correct)
    record = {
        "tried": tried,
        "chosen": chosen,
        "epochs_each": epochs,  # the first epochs of the whole schedule
        "in_full": whole,  # each rate ran the whole schedule: the winner's run is the kept one
        "epochs": sum(row["epochs_run"] for row in tried),
        "seconds": round(time.perf_counter() - start, 1),
    }
    return record, top.get(chosen)


def lr_result(result: TrainResult) -> dict:
    """What the record keeps of each learning rate tried."""
    return {
        "val_accuracy": result.val_accuracy,
        "kept_epoch": result.kept_epoch,
        "epochs_run": len(result.history) - 1,
    }


def train_at(
    strategy: str,
    lr: float,
    *,
    model_config: Model,
    config: Finetune,
    data: tuple[LabelledImages, LabelledImages | None],
    num_classes: int,
    device: torch.device,
    probe_dir: Path | None,
    desc: str,
    clock: StageClock | None,
    stop_after: int | None = None,
) -> Trained:
    """One fit of `strategy` at peak learning rate `lr`, from weights seeded by config.seed
    (in a scope, so it reproduces whatever ran before it): build, apply the strategy, train
    on data's (train, val) under the strategy's BatchNorm policy; `stop_after` epochs of
    the schedule only (train_model)."""
    own = getattr(config, strategy)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model = strategies.build_model(
            strategy, model_config.name, model_config.weights, num_classes
        )
        applied = strategies.prepare(model, strategy, config, probe_dir)
        input_cfg = backbone.spec_input(model, model_config, data[0].images.shape[1])
        groups = strategies.param_groups(model, strategy, config, lr)
        applied["trainable_parameters"] = strategies.trainable_parameters(groups)
        result = train_model(
            model,
            train=data[0],
            val=data[1],
            input_cfg=input_cfg,
            config=config,
            device=device,
            param_groups=groups,
            bn=own.bn,
            desc=desc,
            clock=clock,
            stop_after=stop_after,
        )
    return Trained(model, input_cfg, result, {**applied, "bn": own.bn, "lr": lr})


def augment(
    images: torch.Tensor,
    config: InputConfig,
    generator: torch.Generator,
    *,
    erase: float = 0.0,
    rows_of: tuple[int, int] | None = None,
) -> torch.Tensor:
    """uint8 (B, H, W, C) -> normalised float (B, 3, S, S): random flip, shift and scale.

    One affine resample does the resize and the augmentation together, on the device.
    With probability `erase` an image also loses a random rectangle to the mean colour
    (random erasing, Zhong et al. 2020), all images at once.
    rows_of=(first, total): `images` are rows first.. of a global batch of `total`; draws are
    made for all `total`, so every DDP rank's generator stays in step with one process's.
    """
    x = images.permute(0, 3, 1, 2).float().div_(255)  # greyscale stays one channel here
    b, channels = x.shape[:2]
    first, total = rows_of or (0, b)

    def uniform(low: float, high: float) -> torch.Tensor:
        draw = torch.rand(total, generator=generator, device=x.device)[first : first + b]
        return draw * (high - low) + low

    scale = uniform(*SCALE_RANGE)
    flip = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = uniform(-2 * MAX_SHIFT, 2 * MAX_SHIFT)
    theta[:, 1, 2] = uniform(-2 * MAX_SHIFT, 2 * MAX_SHIFT)
    grid = F.affine_grid(theta, [b, channels, config.size, config.size], align_corners=False)
    x = F.grid_sample(x, grid, mode=config.interpolation, padding_mode="zeros", align_corners=False)
    x = backbone.normalised_rgb(x.clamp_(0, 1), config)
    if not erase:
        return x  # no draws either: the generator's stream is the same as without erasing
    # A rectangle of ERASE_AREA of the image at aspect ratio in ERASE_ASPECT, per image.
    area = uniform(*ERASE_AREA)
    aspect = uniform(*np.log(ERASE_ASPECT)).exp()
    height, width = (area * aspect).sqrt().clamp_(max=1), (area / aspect).sqrt().clamp_(max=1)
    top, left = uniform(0, 1) * (1 - height), uniform(0, 1) * (1 - width)
    erased = uniform(0, 1) < erase
    centres = (torch.arange(config.size, device=x.device) + 0.5) / config.size
    rows = (centres >= top[:, None]) & (centres < (top + height)[:, None])  # (B, S)
    cols = (centres >= left[:, None]) & (centres < (left + width)[:, None])
    mask = rows[:, :, None] & cols[:, None, :] & erased[:, None, None]
    return x.masked_fill_(mask[:, None], 0.0)  # 0 after normalising is the mean colour


@dataclass
class Loop:
    """What one training run holds across its epochs (train_model's setup)."""

    model: nn.Module  # DDP-wrapped under torchrun, else `net`
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: nn.Module
    generator: torch.Generator  # augmentation draws
    shuffle: torch.Generator
    labels: torch.Tensor
    resident: torch.Tensor | None  # device-resident train images, when they fit
    batch_size: int
    steps_per_epoch: int
    rows: tuple[int, int]  # this rank's [first, last) rows of every global batch
    backoff: guards.OomBackoff


def train_model(
    model: nn.Module,
    *,
    train: LabelledImages,
    val: LabelledImages | None,
    input_cfg: InputConfig,
    config: Finetune,
    device: torch.device,
    param_groups: list[dict],
    bn: str,
    desc: str = "finetune",
    clock: StageClock | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """AdamW + one-cycle + label smoothing; keeps the weights config.keep names: the last
    epoch's (the end of the annealed schedule, as Kornblith et al. 2019 and VTAB evaluate;
    val chooses rates, not epochs) or the best epoch's on val. Without `val`, the last
    epoch's: nothing is selected, as a k-shot curve's budget requires.

    `param_groups` (strategies.param_groups) say what trains and at which peak lr; `bn` is
    the BatchNorm policy (strategies.set_train_mode) for every training forward pass. The
    history starts with epoch 0, the model before any update (never kept); early stopping
    ends training after `config.patience` epochs without a better val accuracy.
    `stop_after`: run only that many epochs of the config.epochs schedule (a learning-rate
    trial, search_rates). Under torchrun each rank trains on its slice of every (global)
    batch, and DDP averages the gradients, so the batch size, schedule and shuffle are
    those of one process.
    """
    loop = setup(model, train, config, device, param_groups, desc)
    history = [
        {
            "epoch": 0,
            "train_loss": starting_loss(loop, train, input_cfg, config, device, bn),
            "val_accuracy": val_score(loop, val, input_cfg, device),
        }
    ]
    if clock is not None:
        clock.ready()
    kept, seconds = run_epochs(
        loop,
        history,
        train=train,
        val=val,
        input_cfg=input_cfg,
        config=config,
        device=device,
        bn=bn,
        desc=desc,
        clock=clock,
        stop_after=stop_after,
    )
    rate = loop.steps_per_epoch * loop.batch_size * (len(history) - 1) / seconds
    return dataclasses.replace(kept, history=history, images_per_s=rate, train_seconds=seconds)


def run_epochs(
    loop: Loop,
    history: list[dict],
    *,
    train: LabelledImages,
    val: LabelledImages | None,
    input_cfg: InputConfig,
    config: Finetune,
    device: torch.device,
    bn: str,
    desc: str,
    clock: StageClock | None,
    stop_after: int | None,
) -> tuple[TrainResult, float]:
    """train_model's epochs, appended to `history`: the kept weights and the seconds spent
    training (val scoring excluded)."""
    kept: TrainResult | None = None
    best_epoch, best_accuracy = 0, None  # early stopping's reference
    seconds = 0.0
    for epoch in range(1, (stop_after or config.epochs) + 1):
        strategies.set_train_mode(loop.model, bn)
        start = time.perf_counter()
        loss = train_epoch(loop, train, input_cfg, config, device, epoch, desc, clock)
        seconds += time.perf_counter() - start
        accuracy = val_score(loop, val, input_cfg, device)
        history.append({"epoch": epoch, "train_loss": loss, "val_accuracy": accuracy})
        if distributed.is_main():
            log.info("%s epoch %d: loss %.4f, val %s", desc, epoch, loss, accuracy)
        improved = accuracy is not None and (best_accuracy is None or accuracy > best_accuracy)
        if improved:
            best_epoch, best_accuracy = epoch, accuracy
        if improved and config.keep == "best":
            kept = snapshot(loop, epoch, accuracy)
        if accuracy is not None and epoch - best_epoch >= config.patience:
            if distributed.is_main():
                log.info("%s: early stop after epoch %d", desc, epoch)
            break
    if kept is None or config.keep == "last":
        kept = snapshot(loop, len(history) - 1, history[-1]["val_accuracy"])
    return kept, seconds


def snapshot(loop: Loop, epoch: int, accuracy: float | None) -> TrainResult:
    """The weights as they are after `epoch` (a copy on the host), history filled in later."""
    state = {k: v.detach().to("cpu", copy=True) for k, v in loop.net.state_dict().items()}
    return TrainResult(state, epoch, accuracy, [], 0.0)


def setup(
    model: nn.Module,
    train: LabelledImages,
    config: Finetune,
    device: torch.device,
    param_groups: list[dict],
    desc: str,
) -> Loop:
    """The model on the device (DDP under torchrun), optimiser, schedule, loss and RNGs."""
    batch_size = min(config.batch_size, len(train))
    steps_per_epoch = len(train) // batch_size  # drop the ragged batch: constant shapes
    if device.type == "cpu":
        depthwise.route_weight_gradients(model)
    net = model.to(device, memory_format=torch.channels_last)  # keeps Parameter identity
    first, last = distributed.batch_rows(batch_size)
    optimizer = strategies.optimizer(param_groups, device)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in param_groups],
        total_steps=steps_per_epoch * config.epochs,
        pct_start=config.warmup_fraction,
    )
    feed.setup_device(device)
    return Loop(
        model=distributed.wrap_ddp(net, device),
        net=net,
        optimizer=optimizer,
        scheduler=scheduler,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
        generator=torch.Generator(device=device).manual_seed(config.seed),
        shuffle=torch.Generator().manual_seed(config.seed),
        labels=torch.from_numpy(train.labels).to(device),
        resident=feed.resident(train.images, device),  # None: stream from host memory
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        rows=(first, last),
        backoff=guards.OomBackoff(last - first, floor=guards.MIN_TRAIN_MICRO_BATCH, desc=desc),
    )


def epoch_order(loop: Loop, shuffle: torch.Generator, train_size: int) -> torch.Tensor:
    """(steps, this rank's rows) of train indices for one epoch, from `shuffle`.

    Sorted rows read a memory-mapped array in file order (the batch is the same set);
    sorting before taking this rank's slice keeps DDP's batches those of one process.
    """
    steps, size = loop.steps_per_epoch, loop.batch_size
    order = torch.randperm(train_size, generator=shuffle)[: steps * size]
    first, last = loop.rows
    return order.view(steps, size).sort(dim=1).values[:, first:last]


def train_epoch(
    loop: Loop,
    train: LabelledImages,
    input_cfg: InputConfig,
    config: Finetune,
    device: torch.device,
    epoch: int,
    desc: str,
    clock: StageClock | None,
) -> float:
    """One pass over train with updates; returns the mean training loss (all ranks)."""
    order = epoch_order(loop, loop.shuffle, len(train))
    batches = epoch_batches(train.images, loop.labels, order, loop.resident, device)
    # Losses and gradient norms stay on the device and are checked in blocks: a host
    # read every step would make the host wait for the GPU each time.
    losses = torch.zeros(loop.steps_per_epoch, device=device)
    grad_norms = torch.zeros(loop.steps_per_epoch, device=device)
    check_every = LOSS_CHECK_EVERY if device.type == "cuda" else 1
    progress = tqdm(
        batches,
        total=loop.steps_per_epoch,
        desc=f"{desc} epoch {epoch}",
        mininterval=2,
        disable=not distributed.is_main(),
    )
    for step, (batch, y) in enumerate(progress):
        x = augmented(loop, batch, input_cfg, config, device, loop.generator)

        def batch_loss(rows: slice, x=x, y=y) -> torch.Tensor:
            with backbone.autocast(device):
                return loop.loss_fn(loop.model(x[rows]), y[rows])

        # On CUDA OOM: smaller micro-batches, same effective batch (guards.OomBackoff).
        losses[step] = loop.backoff.backward(batch_loss, len(y), loop.optimizer).detach()
        grad_norms[step] = guards.grad_norm(loop.model)
        if (step + 1) % check_every == 0 or step + 1 == loop.steps_per_epoch:
            guards.check_finite(losses, grad_norms, upto=step, epoch=epoch)
        loop.optimizer.step()
        loop.scheduler.step()
        if clock is not None:
            clock.step(loop.batch_size, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return distributed.mean_across_ranks(float(losses.mean()), device)


def augmented(
    loop: Loop,
    batch: torch.Tensor,
    input_cfg: InputConfig,
    config: Finetune,
    device: torch.device,
    generator: torch.Generator,
) -> torch.Tensor:
    """A training batch as the model sees it: augmented on the device."""
    with host.one_thread(device):
        return augment(
            batch,
            input_cfg,
            generator,
            erase=config.random_erase,
            rows_of=(loop.rows[0], loop.batch_size),
        )


def starting_loss(
    loop: Loop,
    train: LabelledImages,
    input_cfg: InputConfig,
    config: Finetune,
    device: torch.device,
    bn: str,
) -> float:
    """The training loss before any update, under training conditions: train mode with the
    BatchNorm policy `bn`, augmented batches, on up to STARTING_BATCHES batches.

    Its own shuffle and augmentation streams leave training's untouched, and BatchNorm's
    running statistics (which a train-mode forward updates) are put back as they were.
    """
    buffers = {k: v.detach().clone() for k, v in loop.net.named_buffers()}
    shuffle = torch.Generator().manual_seed(config.seed + STARTING_SEED_OFFSET)
    generator = torch.Generator(device=device).manual_seed(config.seed + STARTING_SEED_OFFSET)
    order = epoch_order(loop, shuffle, len(train))[:STARTING_BATCHES]
    batches = epoch_batches(train.images, loop.labels, order, loop.resident, device)
    strategies.set_train_mode(loop.net, bn)
    total = torch.zeros((), device=device)
    with torch.no_grad():
        for batch, y in batches:
            x = augmented(loop, batch, input_cfg, config, device, generator)

            def loss_sum(size: int, x=x, y=y) -> torch.Tensor:  # micro-batches, as training
                with backbone.autocast(device):
                    return sum(
                        loop.loss_fn(loop.net(x[i : i + size]), y[i : i + size]).float()
                        * len(y[i : i + size])
                        for i in range(0, len(y), size)
                    )

            total += loop.backoff.run(loss_sum) / len(y)
        for name, value in loop.net.named_buffers():
            value.copy_(buffers[name])
    return distributed.mean_across_ranks(float(total) / len(order), device)


def val_score(
    loop: Loop, val: LabelledImages | None, input_cfg: InputConfig, device: torch.device
) -> float | None:
    """The val accuracy train_model selects by; None without val (nothing is selected)."""
    if val is None:
        return None
    return val_accuracy(loop.net, val, input_cfg, loop.batch_size, device)


def val_accuracy(
    net: nn.Module, val: LabelledImages, input_cfg: InputConfig, batch_size: int, device
) -> float:
    """Accuracy on val in eval mode (the model as it would be kept)."""
    probs = predict_proba(net, val.images, input_cfg, batch_size=batch_size, device=device)
    return float((probs.argmax(1) == val.labels).mean())


def epoch_batches(
    images: np.ndarray,
    labels: torch.Tensor,
    order: torch.Tensor,
    resident: torch.Tensor | None,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels) on the device for each row of `order` (steps, batch).

    From device-resident images when they fit, else streamed from host memory.
    """
    if resident is not None:
        # One index copy per epoch: a per-step host->device copy would stall the queue.
        for rows in order.to(device):
            yield resident[rows], labels[rows]
        return
    index = order.to(device)
    stream = feed.stream(lambda i: images[order[i].numpy()], len(order), device)
    for rows, batch in zip(index, stream, strict=True):
        yield batch, labels[rows]


def predict_proba(
    model: nn.Module,
    images: np.ndarray,
    input_cfg: InputConfig,
    *,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Class probabilities (N, K) float32, in input order."""
    logits = guards.OomBackoff(batch_size, desc="predict").run(
        lambda size: backbone.forward_batches(
            model, images, input_cfg, batch_size=size, device=device, desc="predict"
        )
    )
    return torch.from_numpy(logits).softmax(1).numpy()


def checkpoint(trained: Trained, *, strategy: str, backbone_name: str, classes: tuple[str, ...]):
    """A checkpoint that describes itself: the kept weights beside their config."""
    config = {
        "backbone": backbone_name,
        "strategy": strategy,
        "num_classes": len(classes),
        "classes": list(classes),
        "input": dataclasses.asdict(trained.input_cfg),
        "kept_epoch": trained.result.kept_epoch,
        **trained.applied,
    }
    return {"model": trained.result.state_dict, "config": config}


def training_record(
    strategy: str, runs: list[tuple[int, Trained]], *, adapter_bytes: int | None = None
) -> dict:
    """The record of one strategy's training: the first seed's in full, each seed's summary;
    `adapter_bytes`, lora's adapter file's size on disk."""
    first = runs[0][1]
    result = first.result
    record = {
        "method": strategy,
        "kept_epoch": result.kept_epoch,
        "val_accuracy": result.val_accuracy,
        "epochs_run": len(result.history) - 1,  # epoch 0 is the start, not a pass
        "history": result.history,
        **first.applied,
        "train_images_per_s": round(result.images_per_s, 1),
        "train_seconds": round(result.train_seconds, 1),
    }
    if adapter_bytes is not None:
        record["adapter_bytes"] = adapter_bytes
    if len(runs) > 1:
        record["seeds"] = [
            {
                "seed": seed,
                "kept_epoch": t.result.kept_epoch,
                "val_accuracy": t.result.val_accuracy,
                "epochs_run": len(t.result.history) - 1,
            }
            for seed, t in runs
        ]
    return record
