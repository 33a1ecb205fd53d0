"""The curves_finetune stage main on tiny prepared splits, with a real MLflow store."""

from __future__ import annotations

import csv
import time

import pytest
from mlflow.tracking import MlflowClient

from transferlab.evaluation import curves_finetune
from transferlab import io
from transferlab import tracking
from tests.conftest import TINY_MODEL, stage_workdir


def _stage_dir(root, **curves) -> dict:
    """The shipped params.yaml, shrunk, and prepared splits, as `prepare` leaves them."""
    return stage_workdir(
        root,
        (4, 2, 3),
        backbone={"name": TINY_MODEL, "weights": "none", "image_size": 32},
        finetune={"epochs": 1, "batch_size": 8, "device": "cpu"},
        curves=curves,
    )


def _outputs(root, params) -> tuple[list[dict], dict]:
    out = root / params["paths"]["curves_finetune"]
    with open(out / curves_finetune.CSV_FILE) as f:
        table = list(csv.DictReader(f))
    return table, io.read_json(out / "summary.json")


def test_empty_list_writes_empty_valid_outputs_quickly(mlflow_store, tmp_path):
    params = _stage_dir(tmp_path, shots=[1, 2, None], finetune=[])
    start = time.perf_counter()
    curves_finetune.main()
    seconds = time.perf_counter() - start
    table, summary = _outputs(tmp_path, params)
    assert [row["shots"] for row in table] == ["1", "2", "4"]  # x values, no series columns
    assert summary == {"series": {}, "comparisons": {}, "rows": []}
    assert seconds < 30  # no model is built; most of this is MLflow's store setup
    client = MlflowClient(mlflow_store)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'curves_finetune'")
    assert len(runs) == 1 and runs[0].data.metrics["fits"] == 0


@pytest.mark.slow
def test_listed_strategies_give_a_plot_column_and_a_series_each(mlflow_store, tmp_path):
    params = _stage_dir(tmp_path, shots=[1, None], seeds=2, finetune=["full", "scratch"])
    curves_finetune.main()
    table, summary = _outputs(tmp_path, params)
    # columns are the strategy names dvc.yaml's plot takes from curves.finetune
    assert list(table[0]) == ["shots", "full", "full_std", "scratch", "scratch_std"]
    assert set(summary["series"]) == {"finetune_full", "finetune_scratch"}
    assert len(summary["rows"]) == 2 * 2 * 2
    for series in summary["series"].values():
        assert set(series) == {"1", "all"}
        assert all(0 <= cell["mean"] <= 1 and len(cell["by_seed"]) == 2 for cell in series.values())
    # scratch listed: the others are judged against it at every shot
    (comparison,) = summary["comparisons"].values()
    assert list(summary["comparisons"]) == ["finetune_full_vs_scratch"]
    assert set(comparison) == {"1", "all"}
    assert all(
        v["verdict"] in ("positive", "negative", "inconclusive") for v in comparison.values()
    )
