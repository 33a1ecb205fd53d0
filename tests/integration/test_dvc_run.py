"""bench/device/dvc_run.sh, the whole `dvc exp run` for a lent GPU box in one call, driven as
on the box (a tree without .git, a carried pack unpacked first) at toy size on the CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_MODEL
from tests.integration.conftest import copy_repo

FMNIST = Path("/usr/share/datasets/fashion-mnist")
TOY = [
    "data.train_per_class=6",
    "data.test_per_class=5",
    "data.val_fraction=0.34",
    f"backbones.lite0.name={TINY_MODEL}",  # the script keeps lite0 alone (the pack's weights)
    "backbones.lite0.weights=none",
    "backbone.image_size=32",
    "extract.batch_size=32",
    "probe.C_num=3",
    "probe.max_iter=200",
    "finetune.epochs=1",
    "finetune.batch_size=8",
    "curves.shots=[1, null]",
    "curves.seeds=2",
]
# What ../shared/gpu/pack.sh's unpack.sh does, minus the wheels (this venv has dvc and
# mlflow): the data into .fmnist/, and a mark that it ran.
UNPACK = f"mkdir -p .fmnist && cp {FMNIST}/*.gz .fmnist/ && touch unpacked\n"


def box_tree(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "tree"  # what the box receives: the working tree, no .git
    root.mkdir()
    copy_repo(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    (root / ".gpu-pack").mkdir()
    (root / ".gpu-pack" / "unpack.sh").write_text(UNPACK)
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return root, env


@pytest.mark.slow
def test_one_call_runs_every_stage_and_writes_the_timeline_and_gpu_record(tmp_path):
    root, env = box_tree(tmp_path)
    done = subprocess.run(
        ["bash", "bench/device/dvc_run.sh", *TOY],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = tmp_path / "out"
    assert done.returncode == 0, done.stdout + done.stderr + (out / "dvc.log").read_text()
    assert (root / "unpacked").exists()
    record = json.loads((out / "run.json").read_text())
    assert record["finished"] and record["exit"] == 0 and record["seconds"] > 0
    assert record["gpu_busy_share"] is None  # no nvidia-smi here: no samples, no figure
    timeline = json.loads((out / "timeline.json").read_text())
    stages = [t["stage"] for t in timeline]
    assert {"prepare", "extract@lite0", "probe@lite0", "rank", "finetune@full"} <= set(stages)
    assert stages.index("prepare") < stages.index("extract@lite0") < stages.index("evaluate")
    assert all(t["total_s"] > 0 for t in timeline)
    assert set(json.loads((out / "metrics.json").read_text())) >= {"probe", "full", "transfer"}
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert list(params["backbones"]) == ["lite0"]  # the one candidate whose weights it carries
    assert params["finetune"]["random_erase"] == 0.25  # the full-data setting, kept
    assert params["finetune"]["epochs"] == 1  # the later -S wins
    assert params["data"]["path"] == ".fmnist"


@pytest.mark.slow
def test_the_limit_kills_the_whole_process_group(tmp_path):
    root, env = box_tree(tmp_path)
    env["LIMIT_S"] = "6"
    began = time.time()
    done = subprocess.run(
        ["bash", "bench/device/dvc_run.sh", *TOY],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and time.time() - began < 120
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert not record["finished"] and record["limit_s"] == 6
    time.sleep(2)
    left = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True).stdout
    assert shutil.which("pgrep") is None or left.strip() == ""
