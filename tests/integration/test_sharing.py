"""Sharing across people and runs: a DVC remote round trip, and queued parallel experiments
logging to a real `mlflow server`. Each test works on a copy of the shared shrunk run."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from tests.integration.conftest import BIN, Workspace, kill_session
from transferlab import tracking
from transferlab.store import DEFAULT_STORE

pytestmark = pytest.mark.distributed
DEADLINE_S = 420


@pytest.fixture
def committed(reproduced_copy) -> Workspace:
    """A copy of the shared run with its outputs' .dvc metadata (dvc.lock) committed."""
    reproduced_copy.run("git", "add", "-A")
    reproduced_copy.run("git", "commit", "-qm", "reproduced")
    return reproduced_copy


def test_remote_round_trip_makes_repro_a_no_op(committed, tmp_path):
    reproduced = committed
    remote = tmp_path / "remote"
    reproduced.dvc("remote", "add", "-d", "shared", str(remote))
    reproduced.run("git", "commit", "-qam", "shared remote")
    reproduced.dvc("push")
    # A teammate: a fresh clone with an empty cache and no outputs.
    teammate = Workspace(tmp_path / "teammate")
    reproduced.run("git", "clone", "-q", str(reproduced.root), str(teammate.root))
    assert not (teammate.root / "data").exists()
    teammate.dvc("pull")
    assert (teammate.root / "data" / "features" / "tiny" / "train_features.npy").is_file()
    done = teammate.dvc("repro")
    assert "Running stage" not in done.stdout, done.stdout


@contextlib.contextmanager
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1, sqlite backend in tmp; always terminated."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200:
                    break
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
            time.sleep(1)
        yield uri
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# knn.k values unlike the shipped config's (20) and unlike each other's: an experiment whose
# params match an earlier run comes from DVC's run cache without running, and logs nothing.
QUEUED = {"server": (2, 4), "sqlite": (5, 6)}
# knn.k reruns the cheapest stages that log (no training); MLflow stage tags it may not rerun:
UNTOUCHED = {
    "prepare",
    "extract@tiny",
    "extract_random",
    "probe@tiny",
    "finetune@full",
    "finetune_from_probe@lpft",
}


@pytest.mark.parametrize("store", QUEUED)
def test_queued_parallel_experiments_all_land_in_one_store(committed, tmp_path, store):
    """`dvc queue start -j 2`: on an `mlflow server` (set MLFLOW_TRACKING_URI, the only
    change a user makes), or on the default sqlite file at the repo root, whose writers
    take turns on a file lock; either way no run is lost."""
    reproduced = committed
    names = [f"{store}{k}" for k in QUEUED[store]]
    with contextlib.ExitStack() as stack:
        if store == "server":
            uri = stack.enter_context(mlflow_server(tmp_path))
            reproduced.env["MLFLOW_TRACKING_URI"] = uri
            stack.callback(reproduced.env.pop, "MLFLOW_TRACKING_URI")
        else:
            uri = f"sqlite:///{reproduced.root / DEFAULT_STORE}"
        for name, k in zip(names, QUEUED[store], strict=True):
            reproduced.dvc("exp", "run", "--queue", "-n", name, "-S", f"knn.k={k}")
        # Returns once the workers are started; they run on, in the call's session.
        workers = reproduced.dvc("queue", "start", "-j", "2").session
        stack.callback(kill_session, workers)  # whatever stopping them leaves behind
        stack.callback(reproduced.dvc, "queue", "stop", "--kill", check=False)
        wait_for_queue(reproduced, names[-1])
        shown = json.dumps(json.loads(reproduced.dvc("exp", "show", "--json").stdout))
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
        found = client.search_runs([experiment.experiment_id])
    by_id = {r.info.run_id: r for r in found}
    for name in names:
        children = [
            r
            for r in found
            if r.data.tags.get("dvc_exp_name") == name and MLFLOW_PARENT_RUN_ID in r.data.tags
        ]
        # knn.k reruns kNN and what reads it (its curves, evaluate), never extraction, the
        # probe or fine-tuning; each logs one FINISHED run.
        stages = [r.data.tags["stage"] for r in children]
        assert len(stages) == len(set(stages)), name
        assert {"knn@tiny", "evaluate"} <= set(stages), name
        assert not set(stages) & UNTOUCHED, name
        assert all(r.info.status == "FINISHED" for r in children)
        (parent,) = {r.data.tags[MLFLOW_PARENT_RUN_ID] for r in children}
        assert by_id[parent].info.run_name == name
        (knn,) = [r for r in children if r.data.tags["stage"] == "knn@tiny"]
        assert knn.data.params["knn.k"] == name.removeprefix(store)
        assert name in shown


def wait_for_queue(ws: Workspace, name: str) -> None:
    """Poll `dvc queue status` until nothing is queued or running, within DEADLINE_S.

    On a failure, the message carries experiment `name`'s log.
    """
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        status = ws.dvc("queue", "status").stdout
        if not any(word in status for word in ("Queued", "Running")):
            assert "Failed" not in status, (
                status + ws.dvc("queue", "logs", name, check=False).stdout
            )
            return
        time.sleep(3)
    raise AssertionError(f"queue still busy after {DEADLINE_S} s:\n{status}")
