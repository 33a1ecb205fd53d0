"""Pretrained weights from outside the project: a checkpoint file, checked against the timm
model's own keys and shapes before anything is loaded, and timm's hub download. Each failure
is one UserError naming the candidate (its key under params.yaml's `backbones`)."""

from __future__ import annotations

import contextlib
import importlib
import pickle
import urllib.error
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from torch import nn

from transferlab.errors import UserError

if TYPE_CHECKING:
    from transferlab.params import Candidate

NAMED_WEIGHTS = ("bundled", "hub", "none")  # any other `weights` is a checkpoint path
WEIGHT_CHOICES = "bundled, hub, none, or a path to a checkpoint"
# BatchNorm's step counter: not a weight, and torch fills it in when a checkpoint lacks it.
COUNTER = "num_batches_tracked"
# Transport errors of the HTTP clients under timm's download that are not OSErrors (the
# libraries each install has, if any): (module, class).
_TRANSPORT = (
    ("httpx2", "TransportError"),
    ("httpx", "TransportError"),
    ("urllib3.exceptions", "HTTPError"),
    ("requests", "RequestException"),
)


def _who(name: str, candidate: str | None) -> str:
    """How errors name a backbone: its key under `backbones` where known, and its model."""
    return f"backbones.{candidate} ({name})" if candidate else f"backbone {name}"


def hub_model(name: str, *, num_classes: int, candidate: str | None = None) -> nn.Module:
    """timm model `name` with its pretrained weights from the hub or timm's cache."""
    transport = _transport_errors()
    try:
        return timm.create_model(name, pretrained=True, num_classes=num_classes)
    except (OSError, *transport) as err:
        offline = (LocalEntryNotFoundError, ConnectionError, TimeoutError, urllib.error.URLError)
        if isinstance(err, offline + transport):
            cause = f"found no network and no cached copy of timm's weights ({type(err).__name__})"
        else:
            cause = f"could not get timm's weights ({_first_line(err)})"
        raise UserError(
            f"{_who(name, candidate)}: weights: hub {cause}; connect once so timm caches them, "
            "set HF_HOME to a cache that has them, or set weights to a checkpoint path."
        ) from None


def check_checkpoints(backbones: Mapping[str, Candidate]) -> None:
    """Every candidate whose weights are a checkpoint file: the file loads as plain weights
    and fits its timm model. Cheap: the model is built on the meta device (no memory, no
    init) and the file is memory-mapped where its format allows."""
    for key, candidate in backbones.items():
        if candidate.weights in NAMED_WEIGHTS:
            continue
        if not timm.is_model(candidate.name):
            raise UserError(f"backbones.{key}: unknown timm model {candidate.name!r}.")
        model = shapes_only(candidate.name)
        fitting_state(model, candidate.name, Path(candidate.weights), candidate=key)


def load_checkpoint(
    model: nn.Module, name: str, path: Path, *, candidate: str | None = None
) -> None:
    """Load checkpoint `path` into timm model `name`, once it is known to fit. The classifier
    head is loaded only where it fits too: every stage removes or replaces it."""
    state = fitting_state(model, name, path, candidate=candidate)
    own = model.state_dict()
    fitting = OrderedDict(
        (key, value)
        for key, value in state.items()
        if key in own and isinstance(value, torch.Tensor) and value.shape == own[key].shape
    )
    if hasattr(state, "_metadata"):  # the modules' versions, which torch's loading reads
        fitting._metadata = state._metadata
    # Not strict: fitting_state has checked every key but the head's and the counters'.
    model.load_state_dict(fitting, strict=False)


def fitting_state(
    model: nn.Module, name: str, path: Path, *, candidate: str | None = None
) -> Mapping[str, object]:
    """The state_dict in checkpoint `path`; a UserError unless it fits `model` (timm's
    `name`) key for key and shape for shape, its classifier head aside."""
    state = read_checkpoint(path, _who(name, candidate))
    mismatch = checkpoint_mismatch(state, model)
    if mismatch is not None:
        keys = list(_comparable(model.state_dict(), model))
        example = f", e.g. {keys[0]!r}," if keys else ""
        raise UserError(
            f"{_who(name, candidate)}: weights: {path} does not fit the model: {mismatch}; "
            f"convert the checkpoint to timm's layout for {name} (its keys{example} and "
            "shapes), set name to the timm model it was saved from, or use weights: hub."
        )
    return state


def checkpoint_mismatch(state: Mapping[str, object], model: nn.Module) -> str | None:
    """None when `state` has exactly `model`'s keys with its shapes (the classifier head and
    BatchNorm counters aside); otherwise how it differs, in one phrase:
    "0 of the model's 40 keys match (52 unexpected, e.g. 'features.0.0.weight'; ...)"."""
    own = _comparable(model.state_dict(), model)
    theirs = _comparable(state, model)
    unexpected = [key for key in theirs if key not in own]
    missing = [key for key in own if key not in theirs]
    reshaped = [key for key in own if key in theirs and theirs[key] != own[key]]
    if not (unexpected or missing or reshaped):
        return None
    parts = []
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]!r}")
    if missing:  # which one is missing tells something only where the rest match
        example = f", e.g. {missing[0]!r}" if len(missing) < len(own) else ""
        parts.append(f"{len(missing)} missing{example}")
    if reshaped:
        key = reshaped[0]
        parts.append(
            f"{len(reshaped)} of another shape, e.g. {key!r}: {theirs[key]} in the file, "
            f"{own[key]} in the model"
        )
    matched = len(own) - len(missing) - len(reshaped)
    return f"{matched} of the model's {len(own)} keys match ({'; '.join(parts)})"


def read_checkpoint(path: Path, owner: str = "backbone") -> Mapping[str, object]:
    """The state_dict in `path` (inside a `model` or `state_dict` entry, if so wrapped), read
    as plain data, never code; `owner` names the backbone in errors."""
    if not path.is_file():
        raise UserError(f"{owner}: weights: {path} is not a file; expected {WEIGHT_CHOICES}.")
    try:  # weights_only: a checkpoint is data, never code to run
        # mmap needs torch's zip format (its default since 1.6); a legacy file is read whole.
        state = torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise UserError(
            f"{owner}: weights: cannot load {path} as plain weights ({_first_line(err)})."
        ) from None
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, Mapping):
        raise UserError(
            f"{owner}: weights: {path} holds a {type(state).__name__}, not a state_dict."
        )
    return state


def _comparable(state: Mapping[str, object], model: nn.Module) -> dict[str, object]:
    """Key -> shape (a tuple; the type's name for a value that is no tensor), without the
    model's classifier head and BatchNorm counters."""
    heads = model.pretrained_cfg.get("classifier") if hasattr(model, "pretrained_cfg") else None
    heads = (heads,) if isinstance(heads, str) else tuple(heads or ())
    return {
        key: tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        for key, value in state.items()
        if not str(key).endswith(COUNTER)
        and not any(str(key) == head or str(key).startswith(f"{head}.") for head in heads)
    }


def shapes_only(name: str) -> nn.Module:
    """timm model `name` on the meta device: its keys and shapes, no memory and no init."""
    try:
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False)
    except (RuntimeError, NotImplementedError):  # an init that needs real values: build it
        return timm.create_model(name, pretrained=False)


def _transport_errors() -> tuple[type[Exception], ...]:
    found = []
    for module, name in _TRANSPORT:
        with contextlib.suppress(ImportError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
