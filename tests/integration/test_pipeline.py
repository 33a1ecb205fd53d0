"""The real `dvc repro` on a shrunk config: outputs, caching and MLflow grouping."""

from __future__ import annotations

import json
import re

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from transferlab import tracking

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reproduced(workspace):
    workspace.dvc("repro")
    return workspace


STAGES = [
    "prepare",
    "extract",
    "extract@random",
    "probe",
    "knn",
    "finetune@full",
    "finetune@scratch",
    "finetune@lpft",
    "curves",
    "curves_finetune",
    "evaluate",
]


def test_stage_list_has_every_step(reproduced):
    names = {line.split()[0] for line in reproduced.dvc("stage", "list").stdout.splitlines()}
    assert {
        "prepare",
        "extract",
        "extract_random",
        "probe",
        "knn",
        "finetune@full",
        "finetune@scratch",
        "finetune_from_probe@lpft",
        "curves",
        "curves_finetune",
        "evaluate",
    } <= names


def test_metrics_hold_every_method(reproduced):
    metrics = json.loads((reproduced.root / "reports" / "metrics.json").read_text())
    assert set(metrics) >= {"probe", "knn", "full", "lpft", "scratch", "transfer"}
    for method, values in metrics.items():
        if method != "transfer":
            assert 0 <= values["accuracy"] <= 1 and 0 <= values["macro_f1"] <= 1
            assert 0 <= values["ece"] <= 1
    assert set(metrics["transfer"]) == {
        "full_vs_scratch",
        "lpft_vs_scratch",
        "linear_vs_random_init",
        "linear_vs_raw_pixels",
        "knn_vs_random_init",
        "knn_vs_raw_pixels",
    }
    for judged in metrics["transfer"].values():
        assert judged["verdict"] in {"positive", "negative", "inconclusive"}
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
    assert stages == sorted(STAGES)
    assert all(r.info.status == "FINISHED" for r in children)


def test_second_repro_is_a_no_op(reproduced):
    done = reproduced.dvc("repro")
    assert "Running stage" not in done.stdout
    assert "up to date" in done.stdout


def test_probe_param_reruns_only_probe_and_evaluate(reproduced):
    original = (reproduced.root / "params.yaml").read_text()
    try:
        reproduced.set_params({"probe": {"C_num": 4}})
        assert set(json.loads(reproduced.dvc("status", "--json").stdout)) == {"probe", "curves"}
        ran = _stages_run(reproduced.dvc("repro").stdout)
        assert {"probe", "curves", "evaluate"} <= ran
        assert ran <= {"probe", "curves", "finetune_from_probe@lpft", "evaluate"}
    finally:
        (reproduced.root / "params.yaml").write_text(original)
        reproduced.dvc("repro")


def test_finetune_param_never_reruns_extract(reproduced):
    status = _changed_after(reproduced, {"finetune": {"epochs": 2}})
    assert "extract" not in status
    assert status == {
        "finetune@full",
        "finetune@scratch",
        "finetune_from_probe@lpft",
        "curves_finetune",  # shares the finetune settings; with none listed it trains nothing
    }


def test_a_strategy_param_reruns_only_that_strategy(reproduced):
    changed = _changed_after(reproduced, {"finetune": {"full": {"lr": 0.002}}})
    assert changed == {"finetune@full", "curves_finetune"}  # the one stage of all k-shot fits
    assert _changed_after(reproduced, {"knn": {"k": 5}}) == {"knn", "curves"}


def test_report_plots_and_figures(reproduced):
    root = reproduced.root / "reports"
    text = (root / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert "curves/data_efficiency.png" in links and len(links) >= 5
    for link in links:
        assert (root / link).read_bytes()[:4] == b"\x89PNG"
    assert "Transfer verdicts" in text
    shown = json.loads(reproduced.dvc("plots", "show", "--json").stdout)["data"]
    assert len(shown) >= 3
    assert any("data_efficiency.csv" in name for name in shown)


def test_a_finetune_curve_reruns_only_its_stage_and_reaches_report_and_plots(reproduced):
    original = (reproduced.root / "params.yaml").read_text()
    try:
        reproduced.set_params({"curves": {"finetune": ["full"]}})
        assert set(json.loads(reproduced.dvc("status", "--json").stdout)) == {"curves_finetune"}
        assert _stages_run(reproduced.dvc("repro").stdout) == {"curves_finetune", "evaluate"}
        root = reproduced.root / "reports"
        text = (root / "report.md").read_text()
        assert "| finetune_full | " in text and "figures/data_efficiency.png" in text
        assert (root / "figures" / "data_efficiency.png").read_bytes()[:4] == b"\x89PNG"
        shown = json.loads(reproduced.dvc("plots", "show", "--json").stdout)["data"]
        (curve,) = [v for name, v in shown.items() if "curves_finetune" in name]
        assert curve and "full" in curve[0]["content"]["data"]["values"][0]
    finally:
        (reproduced.root / "params.yaml").write_text(original)
        reproduced.dvc("repro")


def test_random_weights_are_not_called_positive(reproduced):
    original = (reproduced.root / "params.yaml").read_text()
    try:
        reproduced.set_params({"backbone": {"weights": "none"}})
        reproduced.dvc("repro")
        metrics = json.loads((reproduced.root / "reports" / "metrics.json").read_text())
        verdicts = {name: v["verdict"] for name, v in metrics["transfer"].items()}
        assert "positive" not in verdicts.values(), verdicts
        assert metrics["transfer"]["linear_vs_random_init"]["gain"] == 0  # same features
    finally:
        (reproduced.root / "params.yaml").write_text(original)


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
