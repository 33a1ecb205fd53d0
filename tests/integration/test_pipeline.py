"""The real `dvc repro` on a shrunk config: outputs, caching and MLflow grouping."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from stages import tracking

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reproduced(workspace):
    workspace.dvc("repro")
    return workspace


def test_stage_list_has_the_five_steps(reproduced):
    names = {line.split()[0] for line in reproduced.dvc("stage", "list").stdout.splitlines()}
    assert {"prepare", "extract", "probe", "finetune@full", "finetune@scratch", "evaluate"} <= names


def test_metrics_hold_every_method(reproduced):
    metrics = json.loads((reproduced.root / "reports" / "metrics.json").read_text())
    assert set(metrics) >= {"probe", "full", "scratch"}
    for values in metrics.values():
        assert 0 <= values["accuracy"] <= 1 and 0 <= values["macro_f1"] <= 1
    card = json.loads((reproduced.root / "reports" / "data_card.json").read_text())
    assert card["splits"]["test"]["total"] == 50
    assert (reproduced.root / "reports" / "plots" / "confusion" / "probe.csv").is_file()


def test_mlflow_groups_every_stage_under_one_parent(reproduced):
    client = MlflowClient(f"sqlite:///{reproduced.root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    found = client.search_runs([experiment.experiment_id])
    children = [r for r in found if MLFLOW_PARENT_RUN_ID in r.data.tags]
    parents = {r.data.tags[MLFLOW_PARENT_RUN_ID] for r in children}
    assert len(parents) == 1
    stages = sorted(r.data.tags["stage"] for r in children)
    assert stages == sorted(
        ["prepare", "extract", "probe", "finetune@full", "finetune@scratch", "evaluate"]
    )
    assert all(r.info.status == "FINISHED" for r in children)


def test_second_repro_is_a_no_op(reproduced):
    done = reproduced.dvc("repro")
    assert "Running stage" not in done.stdout
    assert "up to date" in done.stdout


def test_probe_param_reruns_only_probe_and_evaluate(reproduced):
    original = (reproduced.root / "params.yaml").read_text()
    try:
        reproduced.set_params({"probe": {"C_num": 4}})
        assert set(json.loads(reproduced.dvc("status", "--json").stdout)) == {"probe"}
        ran = reproduced.dvc("repro").stdout
        assert _stages_run(ran) == {"probe", "evaluate"}
    finally:
        (reproduced.root / "params.yaml").write_text(original)
        reproduced.dvc("repro")


def test_finetune_param_never_reruns_extract(reproduced):
    status = _changed_after(reproduced, {"finetune": {"lr": 0.002}})
    assert "extract" not in status
    assert status == {"finetune@full", "finetune@scratch"}


def _changed_after(ws, changes: dict) -> set[str]:
    original = (ws.root / "params.yaml").read_text()
    try:
        ws.set_params(changes)
        status = json.loads(ws.dvc("status", "--json").stdout)
        return set(status)
    finally:
        (ws.root / "params.yaml").write_text(original)


def _stages_run(stdout: str) -> set[str]:
    return {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")}
