"""Shared fixtures: the real params.yaml, shrunk; tiny generated images; a tmp MLflow store."""

from __future__ import annotations

import dataclasses
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import yaml

from transferlab import selection
from transferlab.data import layout
from transferlab.data.layout import LabelledImages
from transferlab.params import (
    PIPELINE_FILE,
    Candidate,
    Params,
    load_params,
    load_paths,
    parse_params,
)

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = "test_efficientnet"  # timm's tiny registered model, random weights


@pytest.fixture
def params() -> Params:
    """The shipped params.yaml, shrunk to seconds (the shipped config is always tested)."""
    real = load_params(REPO / "params.yaml")
    return dataclasses.replace(
        real,
        backbones={"tiny": Candidate(TINY_MODEL, "none")},
        backbone=dataclasses.replace(real.backbone, image_size=32),
        extract=dataclasses.replace(real.extract, batch_size=16, device="cpu"),
        probe=dataclasses.replace(real.probe, C_num=4, device="cpu"),
        finetune=dataclasses.replace(real.finetune, epochs=1, batch_size=8, device="cpu"),
    )


def dvc_stages(dvc_yaml: str, params: dict) -> dict[str, dict]:
    """dvc.yaml's stages as DVC expands them with `params` (foreach over a list of params,
    or over the backbones mapping, named by its keys), by name."""
    stages = {}
    for name, spec in yaml.safe_load(dvc_yaml)["stages"].items():
        if "foreach" not in spec:
            stages[name] = spec
            continue
        if spec["foreach"] == "${backbones}":
            items, field = list(params["backbones"]), "${key}"
        else:
            section, key = spec["foreach"].strip("${}").split(".")
            items, field = params[section][key], "${item}"
        for item in items:
            text = yaml.safe_dump(spec["do"]).replace(field, str(item))
            stages[f"{name}@{item}"] = yaml.safe_load(text)
    return stages


def tiny_backbone(weights: str = "none") -> dict:
    """stage_workdir sections: one candidate, `tiny`, timm's tiny model at 32 px."""
    return {
        "backbones": {"tiny": {"name": TINY_MODEL, "weights": weights}},
        "backbone": {"image_size": 32},
    }


def save_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Random weights of TINY_MODEL saved as a checkpoint: `backbone.weights: <path>` makes it
    a "pretrained" backbone for tests where the real weights are not the subject."""
    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(timm.create_model(TINY_MODEL).state_dict(), path)
    return path


def synthetic_features(n: int, seed: int, d: int = 200, signal: float = 0.9):
    """Three classes, each shifting its own 10 of d dims: dense enough that too small a C
    underfits, few enough samples that the weakest regularisation overfits."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, :30] += signal * np.eye(3)[labels].repeat(10, axis=1)
    return x, labels


def closed_port() -> int:
    """A local port nobody listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_images(
    n_per_class: int, n_classes: int = 3, size: int = 16, channels: int = 1, seed: int = 0
) -> LabelledImages:
    """Class-dependent blobs: each class is a brighter square in its own corner."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    images = rng.integers(0, 60, size=(len(labels), size, size, channels), dtype=np.uint8)
    half = size // 2
    for i, label in enumerate(labels):
        row, col = divmod(int(label) % 4, 2)
        images[i, row * half : (row + 1) * half, col * half : (col + 1) * half] += 150
    return LabelledImages(images, labels.astype(np.int64))


def stage_workdir(root: Path, per_class: tuple[int, int, int], **sections: dict) -> dict:
    """A folder a stage main can run in: the shipped params.yaml, with `sections` merged
    into its sections (`backbones` replaced), the first candidate chosen as the rank stage
    would, and train/val/test splits of `per_class` images each, prepared as the prepare
    stage leaves them. Returns the params written."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in sections.items():
        if section == "backbones":  # the candidates: replaced, never merged with the shipped
            params[section] = values
        else:
            params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(REPO / PIPELINE_FILE, root / PIPELINE_FILE)  # where outputs go: its vars
    params["paths"] = load_paths(root / "params.yaml")
    loaded = parse_params(params)
    first = next(iter(loaded.backbones))  # chosen, as the rank stage would choose it
    selection.save_choice(
        dataclasses.replace(loaded.paths, selected=root / loaded.paths.selected),
        selection.Selection((first,), {first: loaded.backbones[first]}),
    )
    splits = {
        split: make_images(n, seed=seed)
        for seed, (split, n) in enumerate(zip(layout.SPLITS, per_class, strict=True))
    }
    save_prepared(root / params["paths"]["prepared"], splits, ("a", "b", "c"))
    return params


def save_prepared(directory: Path, splits: dict[str, LabelledImages], classes: tuple[str, ...]):
    """Write `splits` with the pipeline's own writer of the prepared layout."""
    parts = list(splits.values())
    directory.mkdir(parents=True, exist_ok=True)
    source = directory.parent / f".{directory.name}-source.npy"
    np.save(source, np.concatenate([p.images for p in parts]), allow_pickle=False)
    ends = np.cumsum([len(p) for p in parts])
    index = {s: np.arange(end - len(p), end) for s, p, end in zip(splits, parts, ends, strict=True)}
    labels = np.concatenate([p.labels for p in parts])
    try:
        layout.save_prepared(directory, source, labels, index, classes)
    finally:
        source.unlink()


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An MLflow sqlite store with its tables made, once: making them takes seconds."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch, empty_mlflow_db) -> str:
    """A real MLflow sqlite store in tmp, selected the way users select one."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(empty_mlflow_db, path)
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # artifacts land in ./mlartifacts beside the store
    return uri
