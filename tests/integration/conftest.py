"""Temporary copies of the repository with a shrunk params.yaml, driven by the real dvc.

One shared `dvc repro` (the session fixture `reproduced`) serves every test that only reads
its outputs; a test that changes params or reruns stages takes `reproduced_copy`, a copy of
that workspace with its DVC cache, which is far cheaper than another run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.conftest import REPO, TINY_MODEL, save_tiny_checkpoint
from transferlab.params import load_paths

BIN = Path(sys.executable).parent
# No single command of a test takes this long; one that does has hung (a stuck dvc queue
# worker, a lock never released) and fails with its output rather than stall the suite.
COMMAND_TIMEOUT_S = 900
SHRINK = {
    "data": {"train_per_class": 6, "test_per_class": 5, "val_fraction": 0.34},
    "backbone": {"image_size": 32},
    "extract": {"batch_size": 32},
    "probe": {"C_num": 3, "max_iter": 200},
    "finetune": {"epochs": 1, "batch_size": 8},
    "curves": {"shots": [1, 2, None], "seeds": 2},
}
# timm's tiny model with saved random weights: a checkpoint path counts as "pretrained", so
# every stage and verdict runs as with real weights, in a fraction of the time.
TINY_WEIGHTS = "tiny_backbone.pth"  # in the workspace's root, committed with it
# Two candidates: the "pretrained" tiny one and the same with random init, which must rank
# last and never be chosen while a pretrained one exists.
TINY_BACKBONE = {
    "backbones": {
        "tiny": {"name": TINY_MODEL, "weights": TINY_WEIGHTS},
        "tiny_random": {"name": TINY_MODEL, "weights": "none"},
    },
    "backbone": {"image_size": 32},
}
REPLACED = ("backbones",)  # set_params replaces these sections whole instead of merging
# Fixed commit dates: workspaces made from the same tree get the same commit, so the git
# commit recorded in their outputs (provenance) is the same too.
GIT_DATE = "2024-01-01T00:00:00+00:00"


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
            "GIT_AUTHOR_DATE": GIT_DATE,
            "GIT_COMMITTER_DATE": GIT_DATE,
        }
        self.env.pop("MLFLOW_TRACKING_URI", None)  # MLflow's default store, at the repo root

    def run(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess:
        """Run `args` here, in a session of its own, and wait for it alone: its output goes
        to files, not pipes, so a daemon it leaves behind (`dvc queue start`'s workers)
        cannot hold the call open. Past `timeout` seconds, kill the whole session (dvc's
        stage processes included) and fail with what it printed. `.session` on the result
        names the session, for `kill_session`."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(
                args,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,  # nothing may wait for an answer
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                kill_session(process.pid)
                process.wait()
                timed_out = True
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if timed_out:
            raise AssertionError(
                f"{args} still running after {timeout:.0f} s, killed:\n{stdout}\n{stderr}"
            )
        done = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
        done.session = process.pid
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
            if section in REPLACED:
                params[section] = values
            else:
                params[section].update(values)
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def paths(self) -> dict:
        """The output paths (dvc.yaml's vars)."""
        return load_paths(self.root / "params.yaml")


def proc_stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid, pgrp, session, ...);
    None for a process that is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def kill_session(session: int) -> None:
    """SIGKILL every process of a session (from /proc): a command and all it left behind."""
    for entry in Path("/proc").iterdir():
        fields = proc_stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[3]) == session:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


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


def make_workspace(root: Path, mlflow_db: Path, *changes: dict) -> Workspace:
    """A committed repo copy at `root`: no dvc.lock, SHRINK and the tiny backbone, then
    `changes`; its MLflow store starts from `mlflow_db` (tables made, no runs)."""
    copy_repo(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    save_tiny_checkpoint(root / TINY_WEIGHTS)
    shutil.copyfile(mlflow_db, root / "mlflow.db")  # ignored by git: stays out of the commit
    ws = Workspace(root)
    for change in (SHRINK, TINY_BACKBONE, *changes):
        ws.set_params(change)
    ws.run("git", "init", "-q")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "shrunk copy")
    return ws


# Fixtures that run a real `dvc repro`: every test that uses one, directly or through another
# fixture, is marked slow here, so `make test-fast` never runs a pipeline by oversight.
REPRO_FIXTURES = frozenset({"reproduced", "imagefolder_workspace", "photos_reproduced"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REPRO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def run_main(monkeypatch) -> Callable[..., None]:
    """Call a stage module's main in this process, as `python -m <module> ARGS` would."""
    logger = logging.getLogger("transferlab")
    handlers, level = list(logger.handlers), logger.level

    def call(module: ModuleType, *args: str) -> None:
        monkeypatch.setattr(sys, "argv", [module.__file__, *args])
        module.main()

    yield call
    logger.handlers[:] = handlers  # the stage's stderr handler would outlive this test's stderr
    logger.setLevel(level)


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory, empty_mlflow_db) -> Workspace:
    """The shared shrunk `dvc repro`: read its outputs, never change it (see reproduced_copy).

    Under pytest-xdist (`make test` runs two workers) the first worker to need it runs it
    once, under a file lock, and every worker reads its own copy, so no two workers' dvc
    commands ever share a repository."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        ws = make_workspace(tmp_path_factory.mktemp("reproduced"), empty_mlflow_db)
        ws.dvc("repro")
        return ws
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent / "reproduced-shared"  # this run's workers
    done = Path(f"{shared}.done")
    with open(f"{shared}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.is_file():
            shutil.rmtree(shared, ignore_errors=True)  # a worker that died mid-run
            make_workspace(shared, empty_mlflow_db).dvc("repro")
            done.touch()
    root = tmp_path_factory.mktemp("reproduced") / "repo"
    shutil.copytree(shared, root, symlinks=True)
    return Workspace(root)


@pytest.fixture
def reproduced_copy(reproduced, tmp_path, empty_mlflow_db) -> Workspace:
    """A private copy of the shared run (git history, outputs and DVC cache), with its own
    empty MLflow store, for tests that change params or rerun stages."""
    root = tmp_path / "repo"
    shutil.copytree(reproduced.root, root, symlinks=True)
    shutil.rmtree(root / "mlartifacts", ignore_errors=True)
    shutil.copyfile(empty_mlflow_db, root / "mlflow.db")
    return Workspace(root)


@pytest.fixture(scope="module")
def imagefolder_workspace(tmp_path_factory, empty_mlflow_db) -> Workspace:
    """A repo copy whose params point at a small hostile image folder under data/raw/."""
    from tests import hostile

    root = tmp_path_factory.mktemp("repo-images")
    hostile.image_folder(root / "data" / "raw" / "pets")
    images = {
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
    return make_workspace(root, empty_mlflow_db, images)


# A user's first own-data run, as the README's recipe sets it up: a few dozen photo crops per
# class (one truncated file, one picture under two classes), every split drawn from them, the
# shipped curves and input-size rule; the tiny backbone keeps it to a minute.
PHOTO_COUNTS = {"cat": 31, "coffee": 30, "rocket": 29}
PHOTOS = {
    "data": {
        "source": "imagefolder",
        "path": "data/raw/photos",
        "image_size": 64,
        "train_per_class": None,
        "test_per_class": None,
        "val_fraction": 0.1,
        "test_fraction": 0.2,
    },
    "backbone": {"image_size": "auto"},
    "probe": {"C_num": 5},
    "curves": {"shots": [1, 5, 10, 25, None], "seeds": 2},
}


@pytest.fixture(scope="module")
def photos_reproduced(tmp_path_factory, empty_mlflow_db) -> Workspace:
    """`dvc repro` of the whole pipeline on a small folder of real photos."""
    from tests import hostile

    root = tmp_path_factory.mktemp("repo-photos")
    hostile.photo_folder(root / "data" / "raw" / "photos", PHOTO_COUNTS)
    ws = make_workspace(root, empty_mlflow_db, PHOTOS)
    ws.dvc("repro")
    return ws
