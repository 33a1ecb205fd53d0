"""torchrun with 2 gloo processes on CPU: the stage mains as dvc.yaml launches them."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from tests.conftest import (
    REPO,
    TINY_MODEL,
    make_images,
    save_tiny_checkpoint,
    stage_workdir,
    tiny_backbone,
)
from transferlab import io, tracking
from transferlab.data import layout as data
from transferlab.device import distributed
from transferlab.models import backbone
from transferlab.models.backbone import InputConfig
from transferlab.models.strategies import build_model, param_groups
from transferlab.models.training import train_model
from transferlab.params import load_params

pytestmark = pytest.mark.distributed


@pytest.fixture
def stage_dir(tmp_path, empty_mlflow_db):
    """params.yaml (the shipped one, shrunk) and prepared splits, as `prepare` leaves them."""
    # Saved weights: both launches, and every rank, must embed with one and the same model.
    weights = save_tiny_checkpoint(tmp_path / "backbone.pt")
    shutil.copyfile(empty_mlflow_db, tmp_path / "mlflow.db")
    stage_workdir(
        tmp_path,
        (8, 5, 7),
        **tiny_backbone(str(weights)),
        # 4-image batches leave ragged batches and several batches per rank.
        extract={"batch_size": 4, "device": "cpu"},
        finetune={"epochs": 1, "batch_size": 8, "device": "cpu"},
    )
    return tmp_path


def launch(cwd, nproc: int, *stage: str) -> subprocess.CompletedProcess:
    """Run a stage as dvc.yaml does: python -m transferlab.runner.launch N -m stages.X ARGS
    (torchrun's launcher for N > 1, this process for 1)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}",
        # torchrun gives each of N > 1 processes one thread; a single process gets the same,
        # since CPU kernels may sum in another order with another thread count.
        "OMP_NUM_THREADS": "1",
    }
    launcher = [sys.executable, "-m", "transferlab.runner.launch", str(nproc)]
    cmd = [*launcher, "-m", *stage]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


def stage_runs(cwd) -> list:
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    return [r for r in client.search_runs([experiment.experiment_id]) if "stage" in r.data.tags]


def test_two_process_extraction_equals_one_process_exactly(stage_dir):
    features = stage_dir / "data" / "features" / "tiny"
    launch(stage_dir, 1, "stages.extract", "tiny")
    single = {s: io.load_array(io.split_file(features, s, "features")) for s in data.SPLITS}
    for path in features.iterdir():
        path.unlink()
    launch(stage_dir, 2, "stages.extract", "tiny")
    for split in data.SPLITS:
        gathered = io.load_array(io.split_file(features, split, "features"))
        np.testing.assert_array_equal(gathered, single[split])  # bit-identical, in order
        labels = io.load_array(io.split_file(features, split, "labels"))
        prepared = data.load_prepared(stage_dir / "data" / "prepared", split)
        np.testing.assert_array_equal(labels, prepared.labels)
    assert io.read_json(stage_dir / "reports" / "extract" / "tiny.json")["processes"] == 2
    # Rank 0 alone logs: one extract run per launch, never one per process.
    assert [r.data.tags["stage"] for r in stage_runs(stage_dir)] == ["extract@tiny"] * 2


def test_two_process_finetune_writes_one_loadable_checkpoint_like_one_process(stage_dir):
    out = stage_dir / "data" / "methods" / "full" / "tiny"
    launch(stage_dir, 1, "stages.finetune", "full")
    single = io.load_array(out / io.PREDICTIONS_FILE)
    single_record = io.read_json(out / io.RECORD_FILE)
    launch(stage_dir, 2, "stages.finetune", "full")
    # The stage as dvc.yaml runs it, BatchNorm model included: what one process predicts.
    np.testing.assert_allclose(io.load_array(out / io.PREDICTIONS_FILE), single, atol=1e-3)
    record = io.read_json(out / io.RECORD_FILE)
    assert record["history"][0]["train_loss"] == pytest.approx(
        single_record["history"][0]["train_loss"], rel=1e-5
    )
    checkpoint = torch.load(out / io.CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    model = build_model("full", TINY_MODEL, "none", checkpoint["config"]["num_classes"])
    model.load_state_dict(checkpoint["model"])  # plain keys: no DDP "module." prefix
    assert io.load_array(out / io.PREDICTIONS_FILE).shape == (21, 3)
    assert len(io.read_json(out / io.RECORD_FILE)["history"]) == 2  # epoch 0 and 1
    assert [r.data.tags["stage"] for r in stage_runs(stage_dir)] == ["finetune@full"] * 2


def tiny_convnet() -> nn.Module:
    """Plain torch layers, BatchNorm included."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )


MODELS = {
    "convnet": tiny_convnet,
    # timm's BatchNormAct2d (BatchNorm with its activation fused in), as real backbones have.
    "timm": lambda: build_model("scratch", TINY_MODEL, "none", 3),
}


def train_tiny(name: str) -> dict:
    torch.manual_seed(0)
    config = dataclasses.replace(
        load_params(REPO / "params.yaml").finetune, epochs=2, batch_size=8, device="cpu"
    )
    model = MODELS[name]()
    result = train_model(
        model,
        train=make_images(8),  # 24 images: 3 steps of 8 per epoch
        val=make_images(3, seed=1),
        input_cfg=InputConfig(16, (0.5,) * 3, (0.5,) * 3, "bilinear"),
        config=config,
        device=torch.device("cpu"),
        param_groups=param_groups(model, "full", config, config.full.lr[0]),
        bn="train",
    )
    return {"state": result.state_dict, "history": result.history}


def logits(name: str, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The trained model's outputs on images it never saw, in eval mode."""
    model = MODELS[name]()
    model.load_state_dict(state)
    images = torch.from_numpy(make_images(4, seed=3).images)
    config = InputConfig(16, (0.5,) * 3, (0.5,) * 3, "bilinear")
    with torch.no_grad():
        return model.eval()(backbone.to_model_input(images, config))


def _ddp_rank(rank: int, port: int, out: str, name: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    with distributed.process_group(torch.device("cpu")):
        state = train_tiny(name)
    if rank == 0:
        torch.save(state, out)


@pytest.mark.parametrize("name", MODELS)
def test_ddp_training_matches_one_process_on_the_same_global_batches(tmp_path, name):
    """Two processes train the model one process trains: same losses, outputs, BN statistics.

    Not weight for weight: where a gradient is (nearly) zero, e.g. a bias just before a
    BatchNorm, float noise decides its sign, and AdamW scales any gradient to a step of
    about lr, so such weights differ by ~lr between any two summation orders, one process's
    included. They do not change what the model computes.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "ddp.pt"
    torch.multiprocessing.spawn(_ddp_rank, args=(port, str(out), name), nprocs=2)
    ddp = torch.load(out, weights_only=True)
    single = train_tiny(name)
    for got, want in zip(ddp["history"], single["history"], strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
    torch.testing.assert_close(
        logits(name, ddp["state"]), logits(name, single["state"]), rtol=5e-3, atol=5e-3
    )
    running = [key for key in single["state"] if "running_var" in key]
    assert running
    for key in running:
        torch.testing.assert_close(ddp["state"][key], single["state"][key], rtol=1e-4, atol=1e-6)
