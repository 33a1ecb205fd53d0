"""A temporary copy of the repository with a shrunk params.yaml, driven by the real dvc."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent
SHRINK = {
    "data": {"train_per_class": 6, "test_per_class": 5, "val_fraction": 0.34},
    "backbone": {"image_size": 32},
    "extract": {"batch_size": 32},
    "probe": {"C_num": 3, "max_iter": 200},
    "finetune": {"epochs": 1, "batch_size": 8},
    "curves": {"shots": [1, 2, None], "seeds": 2},
}


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        }
        self.env.pop("MLFLOW_TRACKING_URI", None)  # MLflow's default store, at the repo root

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(
                f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args, check=check)

    def set_params(self, changes: dict) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for section, values in changes.items():
            params[section].update(values)
        path.write_text(yaml.safe_dump(params, sort_keys=False))


def copy_repo(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files: the working tree as a clone would see it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("repo")
    copy_repo(root)
    for stale in ("dvc.lock",):
        (root / stale).unlink(missing_ok=True)
    ws = Workspace(root)
    ws.set_params(SHRINK)
    ws.run("git", "init", "-q")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "shrunk copy")
    return ws


@pytest.fixture(scope="module")
def imagefolder_workspace(tmp_path_factory) -> Workspace:
    """A repo copy whose params point at a small hostile image folder under data/raw/."""
    from tests import hostile

    root = tmp_path_factory.mktemp("repo-images")
    copy_repo(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    hostile.image_folder(root / "data" / "raw" / "pets")
    ws = Workspace(root)
    ws.set_params(SHRINK)
    ws.set_params(
        {
            "data": {
                "source": "imagefolder",
                "path": "data/raw/pets",
                "image_size": hostile.SIZE,
                "train_per_class": None,
                "test_per_class": None,
                "test_fraction": 0.25,
                "val_fraction": 0.25,
                "max_reject_fraction": 0.2,
            }
        }
    )
    ws.run("git", "init", "-q")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "image folder copy")
    return ws
