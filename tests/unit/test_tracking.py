"""Against a real MLflow sqlite store in tmp, never a mock."""

import os

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from stages import tracking


def runs(uri: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    return client, client.search_runs([experiment.experiment_id])


def test_stage_runs_of_one_process_share_a_parent(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-test")
    report = tmp_path / "card.json"
    report.write_text("{}")
    with tracking.stage_run("prepare", {"data": {"seed": 0, "path": "x"}}) as run:
        run.log_metrics({"train_images": 10, "nested": {"value": 0.5}})
        run.log_artifact(report)
    with tracking.stage_run("probe", {"probe": {"C_num": 3}}):
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
    with pytest.raises(ValueError), tracking.stage_run("extract", {}):
        raise ValueError("boom")
    _, found = runs(mlflow_store)
    assert {r.info.run_name: r.info.status for r in found}["extract"] == "FAILED"


def test_pipeline_key_is_stable_within_a_process():
    assert tracking.pipeline_key() == tracking.pipeline_key()
    assert str(os.getpid()) in tracking.pipeline_key()


def test_run_tags_have_git_commit():
    tags = tracking.run_tags("evaluate")
    assert tags["stage"] == "evaluate"
    assert tags["git_commit"] == "unknown" or len(tags["git_commit"]) == 40


def test_only_rank_zero_logs(mlflow_store, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with tracking.stage_run("extract", {"a": 1}) as run:
        run.log_metrics({"x": 1.0})
    monkeypatch.setenv("RANK", "0")
    with tracking.stage_run("extract", {"a": 1}):
        pass
    _, found = runs(mlflow_store)
    assert [r.info.run_name for r in found if "stage" in r.data.tags] == ["extract"]
