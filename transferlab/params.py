"""Load params.yaml into frozen, typed dataclasses; reject unknown or ill-typed keys."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from transferlab.errors import UserError

PARAMS_FILE = Path("params.yaml")
PIPELINE_FILE = "dvc.yaml"  # beside params.yaml: its `vars: - paths:` block names every output


@dataclass(frozen=True)
class Paths:
    prepared: Path
    features: Path
    methods: Path
    data_card: Path
    rejects: Path
    duplicates: Path
    extract_report: Path  # a folder: <backbone>.json per candidate
    scores: Path  # a folder: <backbone>.json, the transferability scores
    selected: Path  # the rank stage's choice, with what the later stages read of it
    ranking: Path
    metrics: Path
    headline: Path
    plots: Path
    random_features: Path
    curves: Path
    curves_finetune: Path
    report: Path
    report_html: Path
    figures: Path
    provenance: Path
    timings: Path
    timeline: Path
    validated: Path


@dataclass(frozen=True)
class Launch:
    nproc_per_node: int

    def __post_init__(self) -> None:
        _check_range("launch.nproc_per_node", self.nproc_per_node, 1, None)


@dataclass(frozen=True)
class Data:
    source: str
    path: str
    manifest: str
    image_size: int
    train_per_class: int | None
    test_per_class: int | None
    val_fraction: float
    test_fraction: float
    max_reject_fraction: float
    duplicates: str
    seed: int

    def __post_init__(self) -> None:
        _check_choice("data.source", self.source, SOURCES)
        _check_range("data.image_size", self.image_size, 8, 1024)
        _check_range("data.val_fraction", self.val_fraction, 0.0, 1.0, inclusive=False)
        _check_range("data.test_fraction", self.test_fraction, 0.0, 1.0, inclusive=False)
        _check_range("data.max_reject_fraction", self.max_reject_fraction, 0.0, 1.0)
        _check_choice("data.duplicates", self.duplicates, DUPLICATE_POLICIES)
        for key in ("train_per_class", "test_per_class"):
            if getattr(self, key) is not None:
                _check_range(f"data.{key}", getattr(self, key), 2, None)


@dataclass(frozen=True)
class Candidate:
    """One entry of `backbones`: a timm model and its weights."""

    name: str
    weights: str  # bundled | hub | none | path/to/checkpoint.pth


@dataclass(frozen=True)
class Backbone:
    """Settings every candidate backbone shares."""

    image_size: int | str | None  # a side, AUTO (follows the data), or null: the model's own
    min_image_size: int  # AUTO raises smaller stored images to this side
    seed: int

    def __post_init__(self) -> None:
        if isinstance(self.image_size, str):
            _check_choice("backbone.image_size", self.image_size, (AUTO,))
        elif self.image_size is not None:
            _check_range("backbone.image_size", self.image_size, 8, 1024)
        _check_range("backbone.min_image_size", self.min_image_size, 8, 1024)

    def build(self, candidate: Candidate) -> Model:
        """`candidate` with these shared settings: what builds its network."""
        return Model(
            candidate.name, candidate.weights, self.image_size, self.seed, self.min_image_size
        )


@dataclass(frozen=True)
class Model:
    """What builds one network: a candidate with the shared settings. Not a params section."""

    name: str
    weights: str
    image_size: int | str | None  # as backbone.image_size: models.backbone.input_side resolves it
    seed: int
    min_image_size: int  # backbone.min_image_size

    @property
    def pretrained(self) -> bool:
        return self.weights != "none"


@dataclass(frozen=True)
class Select:
    by: str  # the score that ranks the candidates (SCORES)
    top_k: int  # how many of the best are fine-tuned and studied further
    backbones: tuple[str, ...]  # or these candidates, in this order, whatever their rank

    def __post_init__(self) -> None:
        _check_choice("select.by", self.by, RANK_BY)
        _check_range("select.top_k", self.top_k, 1, None)


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
class Knn:
    k: int
    T: float
    k_grid: tuple[int, ...]
    T_grid: tuple[float, ...]

    def __post_init__(self) -> None:
        for k in (self.k, *self.k_grid):
            _check_range("knn.k", k, 1, None)
        for T in (self.T, *self.T_grid):
            _check_range("knn.T", T, 0.0, None, inclusive=False)


class Rates(tuple):
    """Peak learning rates to try, as a list or one number: finetune.<strategy>.lr."""


@dataclass(frozen=True)
class Plain:
    """A strategy's own knobs (full, scratch, lpft, norm and bitfit have only these): its
    peak learning rates (of several, the best on val trains), and its BatchNorm policy
    (BN_POLICIES)."""

    lr: Rates
    bn: str


@dataclass(frozen=True)
class Freeze(Plain):
    stages: int  # the first N entries of the model's timm feature_info are frozen

    def __post_init__(self) -> None:
        _check_range("finetune.freeze.stages", self.stages, 0, None)


@dataclass(frozen=True)
class Llrd(Plain):
    layer_decay: float

    def __post_init__(self) -> None:
        _check_range("finetune.llrd.layer_decay", self.layer_decay, 0.0, 1.0)


@dataclass(frozen=True)
class Lora(Plain):
    rank: int  # of each adapter: A maps a layer's inputs to `rank` channels, B those back
    alpha: float  # the adapter's output is scaled by alpha / rank (Hu et al. 2022)
    targets: tuple[str, ...]  # module-name suffixes of the 1x1 convolutions adapted

    def __post_init__(self) -> None:
        _check_range("finetune.lora.rank", self.rank, 1, None)
        _check_range("finetune.lora.alpha", self.alpha, 0.0, None, inclusive=False)
        if not self.targets:
            raise UserError(
                "finetune.lora.targets: give at least one module-name suffix of a 1x1 "
                "convolution, e.g. [conv_pw, conv_pwl, conv_head]."
            )


@dataclass(frozen=True)
class Finetune:
    strategies: tuple[str, ...]
    from_probe: tuple[str, ...]
    epochs: int
    batch_size: int
    weight_decay: float
    label_smoothing: float
    random_erase: float
    warmup_fraction: float
    patience: int
    keep: str  # which epoch's weights a fit keeps: KEEP
    search_epochs: int  # a listed rate's trial: the first epochs of the whole schedule
    seed: int
    seeds: int  # seeds per strategy: finetune.seed, +1, ...; paired with scratch's
    device: str
    full: Plain
    scratch: Plain
    lpft: Plain
    freeze: Freeze
    llrd: Llrd
    norm: Plain
    bitfit: Plain
    lora: Lora

    def __post_init__(self) -> None:
        for strategy in self.strategies:
            if strategy in FROM_PROBE:
                raise UserError(
                    f"finetune.strategies: {strategy!r} starts from the probe; list it under "
                    "finetune.from_probe, whose stage depends on the probe's output."
                )
            _check_choice("finetune.strategies", strategy, STRATEGIES)
        for strategy in self.from_probe:
            _check_choice("finetune.from_probe", strategy, FROM_PROBE)
        _check_range("finetune.epochs", self.epochs, 1, None)
        _check_range("finetune.batch_size", self.batch_size, 2, None)
        _check_range("finetune.patience", self.patience, 1, None)
        _check_choice("finetune.keep", self.keep, KEEP)
        _check_range("finetune.search_epochs", self.search_epochs, 1, None)
        _check_range("finetune.seeds", self.seeds, 1, None)
        for strategy in (*STRATEGIES, *FROM_PROBE):
            own = getattr(self, strategy)
            if not own.lr:
                raise UserError(f"finetune.{strategy}.lr: give one learning rate or a list.")
            for lr in own.lr:
                _check_range(f"finetune.{strategy}.lr", lr, 0.0, None, inclusive=False)
            _check_choice(f"finetune.{strategy}.bn", own.bn, BN_POLICIES)
        _check_range("finetune.weight_decay", self.weight_decay, 0.0, None)
        _check_range("finetune.label_smoothing", self.label_smoothing, 0.0, 1.0)
        _check_range("finetune.random_erase", self.random_erase, 0.0, 1.0)
        _check_range("finetune.warmup_fraction", self.warmup_fraction, 0.0, 1.0, inclusive=False)
        _check_choice("finetune.device", self.device, DEVICES)

    @property
    def runs(self) -> tuple[str, ...]:
        """Every strategy the pipeline trains, the probe-initialised ones included."""
        return (*self.strategies, *self.from_probe)

    def stage(self, strategy: str) -> str:
        """The DVC stage that trains `strategy` (dvc.yaml's foreach groups): the one name the
        timings, the report, MLflow and `dvc repro` share."""
        group = "finetune_from_probe" if strategy in self.from_probe else "finetune"
        return f"{group}@{strategy}"


@dataclass(frozen=True)
class Curves:
    shots: tuple[int | None, ...]  # images per class; null = the whole train split
    seeds: int
    pixel_size: int  # raw-pixel reference: images downsampled to at most this side
    finetune: tuple[str, ...]  # strategies also fine-tuned on every k-shot subset

    def __post_init__(self) -> None:
        if not self.shots:
            raise UserError("curves.shots: give at least one shot count.")
        for shot in self.shots:
            if shot is not None:
                _check_range("curves.shots", shot, 1, None)
        _check_range("curves.seeds", self.seeds, 1, None)
        _check_range("curves.pixel_size", self.pixel_size, 1, None)
        for strategy in self.finetune:
            # Probe-initialised strategies would need a probe fitted on each k-shot subset.
            _check_choice("curves.finetune", strategy, STRATEGIES)
        if len(set(self.finetune)) != len(self.finetune):
            raise UserError(f"curves.finetune: {list(self.finetune)} lists a strategy twice.")


@dataclass(frozen=True)
class Verdict:
    confidence: float  # two-sided level of every verdict's interval (McNemar or t over seeds)
    adjust: str  # each family of verdicts corrected by Holm's step-down, or none

    def __post_init__(self) -> None:
        _check_range("verdict.confidence", self.confidence, 0.0, 1.0, inclusive=False)
        _check_choice("verdict.adjust", self.adjust, ADJUSTMENTS)


@dataclass(frozen=True)
class Recommend:
    margin: float  # points of accuracy: a cheaper method within it of the best is as good

    def __post_init__(self) -> None:
        _check_range("recommend.margin", self.margin, 0.0, 100.0)


@dataclass(frozen=True)
class Tracking:
    required: bool  # true: an unreachable MLflow store fails the stage instead of a warning


@dataclass(frozen=True)
class Params:
    paths: Paths
    launch: Launch
    data: Data
    backbones: dict[str, Candidate]
    backbone: Backbone
    select: Select
    extract: Extract
    probe: Probe
    knn: Knn
    finetune: Finetune
    curves: Curves
    verdict: Verdict
    recommend: Recommend
    tracking: Tracking

    def __post_init__(self) -> None:
        if not self.backbones:
            raise UserError("backbones: list at least one candidate, e.g. " + _EXAMPLE + ".")
        for key in self.backbones:
            if not _ID.fullmatch(key):
                raise UserError(
                    f"backbones: {key!r} is not a usable name; it names files and DVC stages, "
                    "so use letters, digits, '_' and '-' (e.g. lite0)."
                )
        for key in self.select.backbones:
            _check_choice("select.backbones", key, tuple(self.backbones))
        if len(set(self.select.backbones)) != len(self.select.backbones):
            raise UserError(f"select.backbones: {list(self.select.backbones)} lists one twice.")

    def model(self, key: str) -> Model:
        """Candidate `key` with the shared backbone settings."""
        if key not in self.backbones:
            close = difflib.get_close_matches(key, list(self.backbones), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UserError(
                f"no backbone {key!r} in params.yaml's backbones; {hint}"
                f"candidates: {', '.join(self.backbones)}."
            )
        return self.backbone.build(self.backbones[key])


DEVICES = ("auto", "cpu", "cuda")
AUTO = "auto"  # backbone.image_size: the input side follows the data (models.backbone.input_side)
SOURCES = ("fashion-mnist", "imagefolder", "csv")
DUPLICATE_POLICIES = ("keep", "drop", "fail")
# Independent of the probe; norm, bitfit and lora are parameter-efficient (docs/methods.md).
STRATEGIES = ("full", "freeze", "llrd", "norm", "bitfit", "lora", "scratch")
BASELINE = "scratch"  # same architecture, random init: every gain is measured against it
FROM_PROBE = ("lpft",)  # heads initialised from the probe
# While fine-tuning, BatchNorm's running statistics either update on each batch (train) or
# stay as loaded (frozen, Kumar et al. 2022's LP-FT); its affine parameters train either way.
BN_POLICIES = ("train", "frozen")
KEEP = ("last", "best")  # a fit's weights: the schedule's end, or its best epoch on val
PROBE_BACKENDS = ("auto", "sklearn", "torch")
ADJUSTMENTS = ("holm", "none")  # verdict.adjust: a family's multiple-comparison correction
SCORES = ("logme", "hscore")  # transferability of frozen features: higher is better
RANK_BY = (*SCORES, "probe", "knn")  # scores, or measured val accuracies of the probes
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_EXAMPLE = "backbones: {lite0: {name: tf_efficientnet_lite0, weights: bundled}}"


def load_params(path: Path = PARAMS_FILE, overrides: Sequence[str] = ()) -> Params:
    """Read and validate a params file, with `overrides` (KEY=VALUE, as `dvc exp run -S`)
    applied, and the output paths of the dvc.yaml beside it; every problem is a UserError
    naming the key."""
    raw = _read_yaml(path)
    if isinstance(raw, dict) and "paths" in raw:
        raise UserError(
            f"{path}: the paths section has moved to {PIPELINE_FILE}'s `vars` (outputs are not "
            "params); delete it from params.yaml."
        )
    raw = apply_overrides(raw, overrides)
    return parse_params({**raw, "paths": load_paths(path)} if isinstance(raw, dict) else raw)


def load_paths(params_file: Path = PARAMS_FILE) -> dict[str, str]:
    """The output paths: the `paths` entry of `vars` in the dvc.yaml beside `params_file`."""
    pipeline = params_file.parent / PIPELINE_FILE
    for entry in _read_yaml(pipeline).get("vars", []):
        if isinstance(entry, dict) and "paths" in entry:
            return entry["paths"]
    raise UserError(f"{pipeline}: no `vars: - paths:` entry; restore it from git.")


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"{path} not found; run from the repository root.")
    try:  # the C parser where PyYAML has it: dvc.yaml is long
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None


# A YAML 1.2 float with an exponent (3e-4), which PyYAML's YAML 1.1 reads as a string.
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`section.key=value` assignments, in order, the value read as YAML (`null`, `[a, b]`),
    as DVC's `-S` reads it. A copy: `raw` is left as it was. Unknown keys are left to
    parse_params, which names them."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r}: expected KEY=VALUE, e.g. finetune.epochs=8.")
        *sections, leaf = key.split(".")
        node = raw
        for depth, section in enumerate(sections, 1):
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                name = ".".join(sections[:depth])
                raise UserError(f"override {item!r}: {name} is a value, not a section.")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise UserError(f"override {item!r}: the value is not valid YAML: {err}") from None
        # PyYAML follows YAML 1.1, where 3e-4 is a string; DVC's -S reads it as a number.
        node[leaf] = float(value) if isinstance(value, str) and _FLOAT.fullmatch(value) else value
    return raw


def parse_params(raw: Any) -> Params:
    """Build Params from a plain mapping, as read from YAML."""
    _check_migrated(raw)
    return _build(Params, raw, "")


def _check_migrated(raw: Any) -> None:
    """Params written for an earlier version: say what changed and what to do instead."""
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("verdict"), dict) and "single_seed_factor" in raw["verdict"]:
        raise UserError(
            "verdict.single_seed_factor is gone: one seed is now judged by McNemar's exact "
            "test on the two arms' predictions for the same test images, not against a noise "
            "borrowed from elsewhere; delete the key (see docs/methods.md, The transfer verdict)."
        )
    if not isinstance(raw.get("backbone"), dict):
        return
    old = {k: raw["backbone"][k] for k in ("name", "weights") if k in raw["backbone"]}
    if old:
        entry = ", ".join(f"{k}: {v}" for k, v in old.items())
        raise UserError(
            f"backbone.{next(iter(old))} has moved: candidates are listed under `backbones`, "
            f"one entry each, e.g. backbones: {{mine: {{{entry}}}}}; backbone keeps "
            "the shared settings (see docs/methods.md, Choosing a backbone)."
        )


def to_dict(params: Any) -> dict[str, Any]:
    """Plain-dict view of a params dataclass (paths as strings), for logging."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(params).items()}


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "params.yaml"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping, got {type(raw).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, sorted(fields), n=1, cutoff=0.6)
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        raise UserError(
            f"unknown key {prefix}{key}; {hint}allowed keys here: {', '.join(sorted(fields))}."
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
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value, key)
        for kind in inner:  # int | str: the first type the value has
            if isinstance(value, kind) and not isinstance(value, bool):
                return value
        names = " or ".join(kind.__name__ for kind in inner)
        raise UserError(f"{key}: expected {names}, got {value!r}.")
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key}: expected a mapping, got {value!r}.")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{key}: expected a list, got {value!r}.")
        return tuple(_coerce(args[0], item, key) for item in value)
    if hint is Rates:
        items = value if isinstance(value, list | tuple) else [value]
        return Rates(_coerce(float, item, key) for item in items)
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
