"""Fine-tuning strategies: which weights start where, which train, and at what rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from timm.utils.model import freeze
from torch import nn

from transferlab import io
from transferlab.errors import UserError
from transferlab.models import backbone, lora
from transferlab.params import Finetune

# Layers whose affine parameters the norm strategy trains (timm's BatchNormAct2d,
# LayerNorm2d and GroupNorm1 are subclasses of these).
NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def build_model(strategy: str, name: str, weights: str, num_classes: int) -> nn.Module:
    """The network a strategy starts from; scratch is the same architecture, random init."""
    return backbone.create_backbone(
        name, "none" if strategy == "scratch" else weights, num_classes=num_classes
    )


def stage_prefixes(model: nn.Module) -> list[str]:
    """Module name of each feature stage, shallow to deep, from timm's feature_info."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise UserError(
            f"{type(model).__name__} has no timm feature_info; the freeze strategy needs it."
        )
    return [entry["module"] for entry in info]


def freeze_stages(model: nn.Module, stages: int) -> list[str]:
    """Freeze the stem and the first `stages` feature stages, BatchNorm statistics included.

    Everything created before the end of stage N (in module order) is frozen, so the stem
    and any block between two feature_info taps go with the stage they lead into.
    Returns the frozen module names.
    """
    if stages == 0:
        return []
    prefixes = stage_prefixes(model)
    if stages > len(prefixes):
        raise UserError(
            f"finetune.freeze.stages: got {stages}; this model has {len(prefixes)} stages."
        )
    last = prefixes[stages - 1]
    owners = [
        name
        for name, module in model.named_modules()
        if name
        and (
            any(True for _ in module.parameters(recurse=False))
            or any(True for _ in module.buffers(recurse=False))
        )
    ]
    inside = [i for i, name in enumerate(owners) if name == last or name.startswith(last + ".")]
    frozen = owners[: inside[-1] + 1]
    # Keep only the outermost names: freezing a parent already covers its children.
    frozen = [n for n in frozen if not any(n.startswith(p + ".") for p in frozen if p != n)]
    freeze(model, frozen, include_bn_running_stats=True)  # BN -> FrozenBatchNorm
    return frozen


def param_groups(model: nn.Module, strategy: str, config: Finetune, lr: float) -> list[dict]:
    """AdamW groups with an absolute 'lr' each; frozen parameters are left out.

    One weight-decay rule for every strategy, timm's: no decay on 1-D parameters (biases,
    BatchNorm's affine parameters) nor on what the model lists in `no_weight_decay()`, so
    llrd differs from full only by its per-layer learning-rate scale.
    """
    skip = set(getattr(model, "no_weight_decay", lambda: ())())
    if strategy == "llrd":
        groups = param_groups_layer_decay(
            model,
            weight_decay=config.weight_decay,
            no_weight_decay_list=skip,
            layer_decay=config.llrd.layer_decay,
        )
        return [
            {"params": g["params"], "weight_decay": g["weight_decay"], "lr": lr * g["lr_scale"]}
            for g in groups
        ]
    groups = param_groups_weight_decay(model, config.weight_decay, no_weight_decay_list=skip)
    return [{**group, "lr": lr} for group in groups if group["params"]]


def trainable_parameters(param_groups: list[dict]) -> int:
    """How many parameters the optimizer updates: a strategy's cost besides its time."""
    return sum(p.numel() for group in param_groups for p in group["params"])


def set_train_mode(model: nn.Module, bn: str) -> None:
    """Training mode, with BatchNorm under its policy (params BN_POLICIES).

    'frozen' keeps every BatchNorm layer in eval mode: it normalises with the running
    statistics it was loaded with and never updates them, while its affine parameters still
    train. That is LP-FT as Kumar et al. (2022) ran it, so the probe's head, fitted on
    eval-mode features, meets the same features at step 0. 'train' normalises each batch
    with its own statistics and updates the running ones (PyTorch's default).
    """
    model.train()
    if bn == "frozen":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def optimizer(param_groups: list[dict], device: torch.device) -> torch.optim.AdamW:
    """AdamW over the groups; on CUDA the fused kernel (one launch for every parameter)."""
    return torch.optim.AdamW(param_groups, fused=device.type == "cuda")


def init_head_from_probe(model: nn.Module, head: dict[str, np.ndarray]) -> None:
    """Set the classifier to the probe folded with its standardiser: logits = probe's scores.

    The probe scores (x - mean) / scale @ coef.T + intercept, which is the linear layer
    W = coef / scale, b = intercept - W @ mean on the raw pooled features.
    """
    coef, intercept = head["coef"], head["intercept"]
    if len(coef) == 1:  # sklearn's binary head scores class 1 only; class 0 scores 0
        coef = np.concatenate([np.zeros_like(coef), coef])
        intercept = np.concatenate([np.zeros_like(intercept), intercept])
    weight = torch.from_numpy(coef / head["scale"]).double()
    mean = torch.from_numpy(np.asarray(head["mean"], np.float64))
    bias = torch.from_numpy(np.asarray(intercept, np.float64)) - weight @ mean
    classifier = model.get_classifier()
    if classifier.weight.shape != weight.shape:
        raise UserError(
            f"probe head has shape {tuple(weight.shape)}, the model's classifier "
            f"{tuple(classifier.weight.shape)}; rerun the probe on this backbone."
        )
    with torch.no_grad():
        classifier.weight.copy_(weight)
        classifier.bias.copy_(bias)


def prepare(model: nn.Module, strategy: str, config: Finetune, probe_dir: Path | None) -> dict:
    """Apply a strategy to a freshly built model; returns what it did, for the record.

    `probe_dir` holds the probe's head, which only lpft reads.
    """
    if strategy == "freeze":
        return {"frozen_modules": len(freeze_stages(model, config.freeze.stages))}
    if strategy == "lpft":
        if probe_dir is None:
            raise UserError("lpft starts from the probe's head: it needs the probe's output.")
        init_head_from_probe(model, io.load_arrays(probe_dir / io.HEAD_FILE))
        return {"head": "probe"}
    if strategy in PARAMETER_EFFICIENT:
        return parameter_efficient(model, strategy, config)
    return {}


PARAMETER_EFFICIENT = ("norm", "bitfit", "lora")  # the backbone's weights stay as loaded


def parameter_efficient(model: nn.Module, strategy: str, config: Finetune) -> dict:
    """Train only what `strategy` trains, and the head; returns how many tensors it trains
    besides the head (and lora's settings).

    norm: every normalisation layer's scale and shift (Frankle et al. 2021). bitfit: every
    bias (Ben Zaken et al. 2022); EfficientNet-Lite's convolutions have none (BatchNorm
    follows each), so there it is BatchNorm's shift alone. lora: low-rank adapters on the
    1x1 convolutions finetune.lora.targets names (Hu et al. 2022; models/lora.py).
    """
    if strategy == "norm":
        chosen = [
            p for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(False)
        ]
    elif strategy == "bitfit":
        chosen = [p for name, p in model.named_parameters() if name.endswith("bias")]
    else:
        own = config.lora
        adapted = lora.add_adapters(model, own.targets, rank=own.rank, alpha=own.alpha)
        chosen = lora.adapter_parameters(model)
    head = {id(p) for p in model.get_classifier().parameters()}
    keep = head | {id(p) for p in chosen}
    for p in model.parameters():  # frozen ones stay out of the optimizer (param_groups)
        p.requires_grad_(id(p) in keep)
    applied = {"trained_tensors": sum(id(p) not in head for p in chosen)}
    if strategy == "lora":
        applied["lora"] = {
            "rank": own.rank,
            "alpha": own.alpha,
            "targets": list(own.targets),
            "adapted_layers": len(adapted),
        }
    return applied


def finish(model: nn.Module, strategy: str) -> dict[str, np.ndarray] | None:
    """What a strategy does once its kept weights are loaded, before it predicts: lora
    merges its adapters into the backbone and returns them (with the head), to be saved on
    their own; the others have nothing to do."""
    if strategy != "lora":
        return None
    adapter = lora.adapter_arrays(model)
    lora.merge_adapters(model)
    return adapter
