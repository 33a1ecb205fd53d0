"""Against a real MLflow sqlite store in tmp, never a mock."""

import dataclasses
import os
import sqlite3
import subprocess
import sys
import types

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID

from tests.conftest import REPO, closed_port
from transferlab import store, tracking
from transferlab.errors import UserError
from transferlab.params import load_params

SHIPPED = load_params(REPO / "params.yaml")


def stage_run(stage: str, logged: dict, *, required: bool = False):
    """tracking.stage_run as a stage main calls it, with tracking.required as given."""
    params = dataclasses.replace(
        SHIPPED, tracking=dataclasses.replace(SHIPPED.tracking, required=required)
    )
    return tracking.stage_run(stage, params, logged)


def runs(uri: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    return client, client.search_runs([experiment.experiment_id])


def test_stage_runs_of_one_process_share_a_parent(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-test")
    report = tmp_path / "card.json"
    report.write_text("{}")
    with stage_run("prepare", {"data": {"seed": 0, "path": "x"}}) as run:
        run.log_metrics({"train_images": 10, "nested": {"value": 0.5}})
        run.log_artifact(report)
    with stage_run("probe", {"probe": {"C_num": 3}}):
        pass
    client, found = runs(mlflow_store)
    by_name = {r.info.run_name: r for r in found}
    parent = by_name["exp-test"]
    assert parent.data.tags[tracking.PIPELINE_KEY_TAG]
    for stage in ("prepare", "probe"):
        child = by_name[stage]
        assert child.data.tags[MLFLOW_PARENT_RUN_ID] == parent.info.run_id
        assert child.data.tags["stage"] == stage
        assert child.data.tags["dvc_exp_name"] == "exp-test"
        assert child.data.tags["git_dirty"] in ("true", "false", "unknown")
        assert child.info.status == "FINISHED"
    prepare = by_name["prepare"]
    assert prepare.data.params["data.seed"] == "0"
    assert prepare.data.metrics == {"train_images": 10.0, "nested.value": 0.5}
    artifacts = [a.path for a in client.list_artifacts(prepare.info.run_id)]
    assert artifacts == ["card.json"]


def test_failed_stage_marks_run_failed(mlflow_store):
    with pytest.raises(ValueError), stage_run("extract", {}):
        raise ValueError("boom")
    _, found = runs(mlflow_store)
    assert {r.info.run_name: r.info.status for r in found}["extract"] == "FAILED"


def test_run_tags_name_the_stage_the_experiment_and_the_code(monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    tags = tracking.run_tags("evaluate")
    assert tags["stage"] == "evaluate" and tags["dvc_exp_name"] == "exp-1"
    # MLflow takes the commit from the entry point's folder unless git ignores it (pytest in
    # .venv), and keeps it for the process: when found, a commit of this repository.
    if MLFLOW_GIT_COMMIT in tags:
        ancestor = ["git", "merge-base", "--is-ancestor", tags[MLFLOW_GIT_COMMIT], "HEAD"]
        assert subprocess.run(ancestor, cwd=REPO, capture_output=True).returncode == 0
    assert tags["git_dirty"] in ("true", "false")  # inside the repo: never "unknown"


def test_only_rank_zero_logs(mlflow_store, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with stage_run("extract", {"a": 1}) as run:
        run.log_metrics({"x": 1.0})
    monkeypatch.setenv("RANK", "0")
    with stage_run("extract", {"a": 1}):
        pass
    _, found = runs(mlflow_store)
    assert [r.info.run_name for r in found if "stage" in r.data.tags] == ["extract"]


def warnings_logged(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("transferlab") and r.levelname == "WARNING"
    ]


def no_client(*args):
    pytest.fail("an MLflow client was opened on a store the quick check found down")


def test_dead_server_warns_once_and_runs_untracked(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(tracking, "_open_run", no_client)  # MLflow's retries never start
    with stage_run("probe", {"probe": {"C_num": 3}}) as run:
        run.log_metrics({"val_accuracy": 0.5})
        run.log_artifact(tmp_path)
        (tmp_path / "out.json").write_text("{}")  # the stage's own work goes on
    assert not run.active
    warnings = warnings_logged(caplog)
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert "tracking.required" in warnings[0]


def test_dead_server_with_tracking_required_is_a_user_error(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    with (
        pytest.raises(UserError, match="unreachable.*tracking.required is true"),
        stage_run("probe", {}, required=True),
    ):
        pytest.fail("the stage body must not run")


def test_locked_sqlite_store_warns_before_any_mlflow_call(mlflow_store, caplog, monkeypatch):
    with stage_run("prepare", {}):  # creates the store
        pass
    holder = sqlite3.connect(mlflow_store.removeprefix("sqlite:///"))
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-write, never finishing
    monkeypatch.setattr(tracking, "_open_run", no_client)  # the quick check decides
    try:
        with stage_run("extract", {}) as run:
            run.log_metrics({"extract_images_per_s": 1.0})
    finally:
        holder.rollback()
        holder.close()
    (warning,) = warnings_logged(caplog)
    assert "database is locked" in warning
    _, found = runs(mlflow_store)
    assert "extract" not in {r.info.run_name for r in found}


def test_server_dying_mid_stage_degrades_to_one_warning(mlflow_store, caplog, tmp_path):
    report = tmp_path / "r.json"
    report.write_text("{}")
    with stage_run("probe", {"probe": {"C_num": 3}}) as run:
        run.log_metrics({"val_accuracy": 0.5})
        # From here on every call reaches a server that is gone.
        run.client = MlflowClient(f"http://127.0.0.1:{closed_port()}")
        run.log_metrics({"fit_seconds": 1.0})
        run.log_artifact(report)
    (warning,) = warnings_logged(caplog)
    assert "logging to MLflow" in warning
    _, found = runs(mlflow_store)
    probe = {r.info.run_name: r for r in found}["probe"]
    assert probe.data.metrics == {"val_accuracy": 0.5}


def test_server_dying_mid_stage_with_tracking_required_fails(mlflow_store):
    with stage_run("probe", {}, required=True) as run:
        run.client = MlflowClient(f"http://127.0.0.1:{closed_port()}")
        with pytest.raises(UserError, match="logging to MLflow"):
            run.log_metrics({"fit_seconds": 1.0})


def test_stage_errors_still_propagate_when_untracked(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ValueError, match="boom"), stage_run("extract", {}):
        raise ValueError("boom")


def test_credentials_never_reach_params_tags_or_warnings(mlflow_store, monkeypatch, caplog):
    monkeypatch.setenv("DVC_EXP_NAME", "https://bob:hunter2@host/x")
    secret_uri = "https://alice:s3cret@storage.example/data?token=abc123&x=1"
    with stage_run("prepare", {"data": {"path": secret_uri}}) as run:
        run.set_tags({"source": secret_uri})
    _, found = runs(mlflow_store)
    stored = repr([(r.data.params, r.data.tags) for r in found])
    for secret in ("s3cret", "abc123", "hunter2", "alice:", "bob:"):
        assert secret not in stored
    assert "https://***@storage.example/data?token=***&x=1" in stored

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://carol:pa55@127.0.0.1:{closed_port()}")
    with stage_run("probe", {}):
        pass
    (warning,) = warnings_logged(caplog)
    assert "carol:***@127.0.0.1" in warning or "***@127.0.0.1" in warning
    assert "pa55" not in warning


def test_client_retries_are_bounded_unless_the_user_chose(monkeypatch, mlflow_store):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")
    with stage_run("probe", {}):
        pass
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"


def test_a_stage_error_is_not_masked_by_a_required_tracker_failing(mlflow_store):
    with (
        pytest.raises(ValueError, match="boom"),
        stage_run("probe", {}, required=True) as run,
    ):
        run.client = MlflowClient(f"http://127.0.0.1:{closed_port()}")
        raise ValueError("boom")


def test_the_store_lock_gives_up_on_a_writer_that_never_lets_go(tmp_path):
    import fcntl

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ticks = iter(range(10_000))  # a clock that moves 0.1 s each time it is read
    clock = types.SimpleNamespace(monotonic=lambda: next(ticks) / 10, sleep=lambda s: None)
    with open(tmp_path / "mlflow.db.lock", "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another process, stuck mid-write
        with (
            pytest.raises(store.TrackingUnavailable, match="held by another process"),
            pytest.MonkeyPatch.context() as patch,
        ):
            patch.setattr(store, "time", clock)
            with store.store_lock(uri, timeout=0.3):
                pytest.fail("the lock was taken while held")
        assert next(ticks) <= 6  # gave up once 0.3 s had passed, not LOCK_TIMEOUT_S
        fcntl.flock(holder, fcntl.LOCK_UN)
    with store.store_lock(uri, timeout=0.3):
        pass  # free again


def test_a_stage_that_logs_nothing_never_imports_mlflow():
    code = (
        "import sys; from transferlab import tracking; "
        "run = tracking.StageRun(None); run.log_metrics({'a': 1.0}); run.finish('FINISHED'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
