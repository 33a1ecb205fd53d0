"""MLflow tracking: the only module that imports mlflow.

Each stage that executes logs one run. Runs from one `dvc repro` / `dvc exp run` are
children of one parent run, found by a key that names the dvc process running them.
The store is MLFLOW_TRACKING_URI when set (e.g. an `mlflow server` shared by a team),
else `sqlite:///mlflow.db` at the DVC repo root. Parallel writers to that sqlite file
(`dvc queue start -j N`) take turns through a file lock beside it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from stages.params import flatten

EXPERIMENT_NAME = "transfer-learning"
PIPELINE_KEY_TAG = "pipeline_key"
DEFAULT_STORE = "mlflow.db"  # at the DVC repo root, when MLFLOW_TRACKING_URI is unset
DEFAULT_ARTIFACTS = "mlartifacts"
_PROCESS_TOKEN = uuid.uuid4().hex  # stands in for a start time where /proc is absent


class StageRun:
    """Logging handle for one stage's MLflow run."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = _now_ms()
        batch = [Metric(k, float(v), now, step) for k, v in flatten(metrics).items()]
        with store_lock(self.client.tracking_uri):
            for start in range(0, len(batch), 1000):
                self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        with store_lock(self.client.tracking_uri):
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        with store_lock(self.client.tracking_uri):
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


class _SilentRun(StageRun):
    """The handle non-zero torchrun ranks get: every call is a no-op."""

    def __init__(self) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        pass

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any]) -> Iterator[StageRun]:
    """One child run for this stage under the pipeline's parent run.

    Under torchrun only rank 0 logs; other ranks get a handle that records nothing.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        yield _SilentRun()
        return
    uri = tracking_uri()
    client = MlflowClient(uri)
    tags = run_tags(stage)
    with store_lock(uri):
        experiment_id = _experiment_id(client)
        parent_id = _parent_run_id(client, experiment_id, tags)
        run = client.create_run(
            experiment_id, tags={**tags, MLFLOW_PARENT_RUN_ID: parent_id}, run_name=stage
        )
        run_id = run.info.run_id
        flat = flatten(params)
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in flat.items()])
    try:
        yield StageRun(client, run_id)
    except BaseException:
        with store_lock(uri):
            client.set_terminated(run_id, "FAILED")
            client.set_terminated(parent_id, "FAILED")
        raise
    with store_lock(uri):
        client.set_terminated(run_id, "FINISHED")
        client.set_terminated(parent_id, "FINISHED")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else sqlite at the DVC repo root (DVC_ROOT), else here.

    Queued experiments run in temp copies that DVC deletes afterwards; DVC_ROOT names the
    main repo there, so their runs land in the same store as `dvc repro`'s.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{_default_root() / DEFAULT_STORE}"


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on <db>.lock while using a sqlite store; no-op for servers.

    sqlite allows one writer, and MLflow's first connection migrates the schema: parallel
    `dvc queue` workers otherwise fail with "database is locked" or race on creation.
    Not re-entrant: never nest it.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: parallel experiments there need an `mlflow server`
        fcntl = None
    if fcntl is None or not uri.startswith("sqlite:///"):
        yield
        return

    lock = Path(uri.removeprefix("sqlite:///") + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_tags(stage: str) -> dict[str, str]:
    """Stage name, git commit and dirty flag, and the DVC experiment name when set."""
    tags = {"stage": stage, "git_commit": _git("rev-parse", "HEAD") or "unknown"}
    status = _git("status", "--porcelain", "--untracked-files=no")
    tags["git_dirty"] = "unknown" if status is None else str(bool(status)).lower()
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def pipeline_key() -> str:
    """Identify the running `dvc` process (host, pid, start time); else this process."""
    pid = own = os.getpid()
    for _ in range(32):
        stat = _proc_stat(pid)
        if stat is None:
            break
        ppid, start = stat
        if _is_dvc(pid):
            return f"{socket.gethostname()}:{pid}:{start}"
        if ppid <= 1:
            break
        pid = ppid
    own_stat = _proc_stat(own)
    return f"{socket.gethostname()}:{own}:{own_stat[1] if own_stat else _PROCESS_TOKEN}"


def _parent_run_id(client: MlflowClient, experiment_id: str, tags: dict[str, str]) -> str:
    key = pipeline_key()
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.{PIPELINE_KEY_TAG} = '{key}'", max_results=1
    )
    if found:
        return found[0].info.run_id
    name = tags.get("dvc_exp_name") or f"pipeline@{tags['git_commit'][:7]}"
    parent_tags = {k: v for k, v in tags.items() if k != "stage"}
    parent = client.create_run(
        experiment_id,
        tags={**parent_tags, PIPELINE_KEY_TAG: key, MLFLOW_RUN_NAME: name},
        run_name=name,
    )
    return parent.info.run_id


def _experiment_id(client: MlflowClient) -> str:
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT_NAME)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # Beside the default store, not in the working directory (a temp copy for queued runs).
    location = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        location = (_default_root() / DEFAULT_ARTIFACTS).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another worker on a server created it first
        return client.get_experiment_by_name(name).experiment_id


def _default_root() -> Path:
    return Path(os.environ.get("DVC_ROOT", ".")).resolve()


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) from /proc; None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def _is_dvc(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    names = [os.path.basename(a.decode(errors="replace")) for a in argv[:3]]
    return "dvc" in names or any(n == "dvc" or n.startswith("dvc.") for n in names[1:2])


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _now_ms() -> int:
    return int(time.time() * 1000)
