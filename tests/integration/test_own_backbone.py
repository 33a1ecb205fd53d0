"""A user's own backbone under `dvc repro`, offline: a checkpoint in another layout, and
`weights: hub` with no network and no cached copy. Each stops with one line naming the
candidate, the cause and what to do, never a traceback."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import timm
import torch

from tests.conftest import TINY_MODEL
from tests.integration.conftest import TINY_BACKBONE, make_workspace

pytestmark = pytest.mark.slow  # each runs `dvc repro` in a fresh workspace

RENAMED = "torchvision_like.pth"  # the tiny model's weights under torchvision-like keys


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    """The lines a stage printed as its error (DVC's own say 'ERROR:')."""
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def stages_run(done: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", done.stdout)


def model_keys() -> int:
    """How many keys of the tiny model the check compares: no head, no BatchNorm counter."""
    return sum(
        not key.startswith("classifier.") and not key.endswith("num_batches_tracked")
        for key in timm.create_model(TINY_MODEL).state_dict()
    )


def test_a_checkpoint_in_another_layout_stops_in_validate(tmp_path: Path, empty_mlflow_db):
    root = tmp_path / "repo"
    root.mkdir()
    weights = timm.create_model(TINY_MODEL).state_dict()
    torch.save({f"features.{key}": value for key, value in weights.items()}, root / RENAMED)
    candidates = {**TINY_BACKBONE["backbones"], "tv": {"name": TINY_MODEL, "weights": RENAMED}}
    ws = make_workspace(root, empty_mlflow_db, {"backbones": candidates})

    done = ws.dvc("repro", check=False)

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [line] = error_lines(done)
    assert line.startswith(f"error: backbones.tv ({TINY_MODEL}): weights: {RENAMED} does not fit")
    assert f"0 of the model's {model_keys()} keys match (" in line
    assert "unexpected, e.g. 'features.conv_stem.weight'" in line
    assert "convert the checkpoint to timm's layout" in line and "Nothing else ran" in line
    assert stages_run(done) == ["validate"]
    assert not (root / "dvc.lock").exists()  # nothing recorded
    changed = ws.run("git", "status", "--porcelain").stdout
    assert changed == "", changed  # every output as it was (here: none made)


def test_hub_with_no_network_and_no_cache_names_the_candidate(tmp_path: Path, empty_mlflow_db):
    hubby = {"backbones": {"hubby": {"name": TINY_MODEL, "weights": "hub"}}}
    ws = make_workspace(tmp_path / "repo", empty_mlflow_db, hubby)
    empty_cache = tmp_path / "hf-home"
    empty_cache.mkdir()
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT"):
        ws.env.pop(variable, None)  # HF_HOME alone decides where the cache is
    # huggingface_hub reads these when it is imported; the warm runner's key holds them, so
    # this command runs warm in a server started with them in force (runner/warm_key.py).
    ws.env.update(HF_HUB_OFFLINE="1", HF_HOME=str(empty_cache))

    done = ws.dvc("repro", check=False)

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [line] = error_lines(done)
    assert line.startswith(
        f"error: backbones.hubby ({TINY_MODEL}): weights: hub found no network and no "
        "cached copy of timm's weights (LocalEntryNotFoundError); connect once so timm "
        "caches them, set HF_HOME to a cache that has them, or set weights to a checkpoint path."
    )
    assert "extract@hubby" in stages_run(done)
    assert list(empty_cache.rglob("*.safetensors")) == []  # nothing was downloaded
