"""Load params.yaml into frozen, typed dataclasses; reject unknown or ill-typed keys."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.errors import UserError

PARAMS_FILE = Path("params.yaml")


@dataclass(frozen=True)
class Paths:
    prepared: Path
    features: Path
    methods: Path
    data_card: Path
    extract_report: Path
    metrics: Path
    plots: Path


@dataclass(frozen=True)
class Data:
    source: str
    path: str
    train_per_class: int | None
    test_per_class: int | None
    val_fraction: float
    seed: int

    def __post_init__(self) -> None:
        _check_choice("data.source", self.source, ("fashion-mnist",))
        _check_range("data.val_fraction", self.val_fraction, 0.0, 1.0, inclusive=False)
        for key in ("train_per_class", "test_per_class"):
            if getattr(self, key) is not None:
                _check_range(f"data.{key}", getattr(self, key), 2, None)


@dataclass(frozen=True)
class Backbone:
    name: str
    weights: str
    image_size: int | None

    def __post_init__(self) -> None:
        if self.image_size is not None:
            _check_range("backbone.image_size", self.image_size, 8, 1024)


@dataclass(frozen=True)
class Extract:
    batch_size: int
    device: str

    def __post_init__(self) -> None:
        _check_range("extract.batch_size", self.batch_size, 1, None)
        _check_choice("extract.device", self.device, DEVICES)


@dataclass(frozen=True)
class Probe:
    C_min: float
    C_max: float
    C_num: int
    max_iter: int
    device: str
    backend: str

    def __post_init__(self) -> None:
        _check_choice("probe.backend", self.backend, PROBE_BACKENDS)
        _check_range("probe.C_min", self.C_min, 0.0, None, inclusive=False)
        _check_range("probe.C_max", self.C_max, self.C_min, None)
        _check_range("probe.C_num", self.C_num, 1, None)
        _check_range("probe.max_iter", self.max_iter, 1, None)
        _check_choice("probe.device", self.device, DEVICES)


@dataclass(frozen=True)
class Finetune:
    strategies: tuple[str, ...]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    label_smoothing: float
    warmup_fraction: float
    seed: int
    device: str

    def __post_init__(self) -> None:
        for strategy in self.strategies:
            _check_choice("finetune.strategies", strategy, STRATEGIES)
        _check_range("finetune.epochs", self.epochs, 1, None)
        _check_range("finetune.batch_size", self.batch_size, 2, None)
        _check_range("finetune.lr", self.lr, 0.0, None, inclusive=False)
        _check_range("finetune.weight_decay", self.weight_decay, 0.0, None)
        _check_range("finetune.label_smoothing", self.label_smoothing, 0.0, 1.0)
        _check_range("finetune.warmup_fraction", self.warmup_fraction, 0.0, 1.0, inclusive=False)
        _check_choice("finetune.device", self.device, DEVICES)


@dataclass(frozen=True)
class Params:
    paths: Paths
    data: Data
    backbone: Backbone
    extract: Extract
    probe: Probe
    finetune: Finetune


DEVICES = ("auto", "cpu", "cuda")
STRATEGIES = ("full", "scratch")
PROBE_BACKENDS = ("auto", "sklearn", "torch")


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate a params file; every problem is a UserError naming the key."""
    if not path.is_file():
        raise UserError(f"{path} not found; run from the repository root.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None
    return parse_params(raw)


def parse_params(raw: Any) -> Params:
    """Build Params from a plain mapping, as read from YAML."""
    return _build(Params, raw, "")


def to_dict(params: Any) -> dict[str, Any]:
    """Plain-dict view of a params dataclass (paths as strings), for logging."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(params).items()}


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, the form MLflow and DVC show."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "params.yaml"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping, got {type(raw).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise UserError(
            f"unknown key {prefix}{unknown[0]}; allowed keys here: {', '.join(sorted(fields))}."
        )
    missing = sorted(fields - set(raw))
    if missing:
        raise UserError(f"missing key {prefix}{missing[0]}.")
    values = {name: _coerce(hints[name], raw[name], f"{prefix}{name}") for name in fields}
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{key}: expected a list, got {value!r}.")
        return tuple(_coerce(args[0], item, key) for item in value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise UserError(f"{key}: expected {hint.__name__}, got {value!r}.")
    return value


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UserError(f"{key}: got {value!r}; allowed: {', '.join(allowed)}.")


def _check_range(
    key: str, value: float, low: float, high: float | None, *, inclusive: bool = True
) -> None:
    ok_low = value >= low if inclusive else value > low
    ok_high = high is None or (value <= high if inclusive else value < high)
    if not (ok_low and ok_high):
        bounds = f"{'[' if inclusive else '('}{low}, {'inf' if high is None else high}"
        bounds += "]" if inclusive and high is not None else ")"
        raise UserError(f"{key}: got {value!r}; allowed range {bounds}.")
