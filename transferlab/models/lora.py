"""Low-rank adapters (Hu et al., ICLR 2022) on a timm model's 1x1 convolutions, built as
HuggingFace peft's LoRA for Conv2d builds them (one adapter, no dropout): peft is the test
oracle (tests/unit/models/test_lora.py) but not a dependency, since it brings transformers
and adds seconds to every stage's start (docs/methods.md has the measurement).

An adapted layer computes base(x) + scaling * B(A(x)), with the base layer frozen. A is a
convolution with the base's kernel, stride and padding and `rank` outputs, Kaiming-uniform
as peft initialises it; B is 1x1 with zero weights, so an adapted model starts as its
backbone. scaling = alpha / rank. Merging adds scaling * B @ A to the base weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import timm
import torch
from torch import nn

from transferlab.errors import UserError
from transferlab.models import pretrained

if TYPE_CHECKING:
    from transferlab.params import Candidate

RANK, ALPHA = "lora_rank", "lora_alpha"  # an adapter file's settings, beside its weights
SHOWN = 4  # 1x1 convolutions an error names as examples


class LoraConv2d(nn.Module):
    """A frozen 1x1 convolution with a low-rank update: base(x) + scaling * B(A(x))."""

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scaling = alpha / rank
        # Built in peft's order (A, B, then A drawn again), so one seed gives peft's weights.
        self.lora_A = nn.Conv2d(
            base.in_channels, rank, base.kernel_size, base.stride, base.padding, bias=False
        )
        self.lora_B = nn.Conv2d(rank, base.out_channels, 1, 1, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """scaling * B @ A as a 1x1 kernel: what merging adds to the base weight."""
        product = self.lora_B.weight.flatten(1) @ self.lora_A.weight.flatten(1)
        return product[:, :, None, None] * self.scaling

    def merged(self) -> nn.Conv2d:
        """The base convolution with the update folded into its weight."""
        with torch.no_grad():
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        return self.base


def is_pointwise(module: nn.Module) -> bool:
    """A 1x1 convolution over all input channels: what an adapter here can target."""
    return (
        isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1) and module.groups == 1
    )


def matches(name: str, target: str) -> bool:
    """peft's rule for a list of targets: the module's name, or its name's last parts."""
    return name == target or name.endswith(f".{target}")


def targeted(model: nn.Module, targets: Sequence[str], who: str) -> list[str]:
    """Names of the 1x1 convolutions `targets` match, in module order; a UserError naming
    `who` (the model, in words) for a target that matches none."""
    pointwise = [name for name, module in model.named_modules() if is_pointwise(module)]
    for target in targets:
        if any(matches(name, target) for name in pointwise):
            continue
        if not pointwise:
            raise UserError(
                f"finetune.lora.targets: {who} has no 1x1 convolution to adapt; leave lora "
                "out of finetune.strategies for it."
            )
        first = {}  # each last part of a name, with the first layer named so
        for name in pointwise:
            first.setdefault(name.rpartition(".")[2], name)
        raise UserError(
            f"finetune.lora.targets: {target!r} matches no 1x1 convolution of {who}; its 1x1 "
            f"convolutions include {', '.join(list(first.values())[:SHOWN])}; a target is the "
            f"end of such a name (here one of: {', '.join(first)})."
        )
    return [name for name in pointwise if any(matches(name, t) for t in targets)]


def check_targets(backbones: Mapping[str, Candidate], targets: Sequence[str]) -> None:
    """Every candidate has a 1x1 convolution for each target; cheap: each model is built on
    the meta device, as pretrained.check_checkpoints does."""
    for key, candidate in backbones.items():
        if not timm.is_model(candidate.name):
            raise UserError(f"backbones.{key}: unknown timm model {candidate.name!r}.")
        model = pretrained.shapes_only(candidate.name)
        targeted(model, targets, f"backbones.{key} ({candidate.name})")


def add_adapters(
    model: nn.Module, targets: Sequence[str], *, rank: int, alpha: float, who: str = "the model"
) -> list[str]:
    """Wrap each 1x1 convolution `targets` match in a LoraConv2d; returns their names."""
    names = targeted(model, targets, who)
    wrap(model, names, rank, alpha)
    return names


def wrap(model: nn.Module, names: Sequence[str], rank: int, alpha: float) -> None:
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, LoraConv2d(getattr(owner, child), rank, alpha))


def adapter_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every adapter's A and B weights: what lora trains besides the head."""
    return [
        p
        for m in model.modules()
        if isinstance(m, LoraConv2d)
        for p in (*m.lora_A.parameters(), *m.lora_B.parameters())
    ]


def adapter_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """What training changed, to be saved on its own: every trainable parameter (the
    adapters and the head) by name, with the adapters' rank and alpha."""
    layers = [m for m in model.modules() if isinstance(m, LoraConv2d)]
    if not layers:
        raise ValueError("the model has no LoRA adapters")
    rank = layers[0].lora_A.out_channels
    arrays = {
        name: p.detach().float().cpu().numpy()
        for name, p in model.named_parameters()
        if p.requires_grad
    }
    return {**arrays, RANK: np.int64(rank), ALPHA: np.float64(layers[0].scaling * rank)}


def load_adapter(model: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Put a saved adapter (adapter_arrays) on a freshly built backbone: its LoRA layers
    added where it names them, its weights and head loaded."""
    adapted = [
        key.removesuffix(".lora_A.weight") for key in arrays if key.endswith(".lora_A.weight")
    ]
    wrap(model, adapted, int(arrays[RANK]), float(arrays[ALPHA]))
    state = {
        k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k not in (RANK, ALPHA)
    }
    own = model.state_dict()
    unknown = [k for k in state if k not in own or own[k].shape != state[k].shape]
    if unknown:
        raise UserError(f"the adapter does not fit the model: {unknown[0]!r} has no place in it.")
    model.load_state_dict(state, strict=False)


def merge_adapters(model: nn.Module) -> None:
    """Fold every adapter into its base convolution: a plain timm model again, which
    predicts as the adapted one did."""
    names = [name for name, m in model.named_modules() if isinstance(m, LoraConv2d)]
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent)
        setattr(owner, child, getattr(owner, child).merged())
