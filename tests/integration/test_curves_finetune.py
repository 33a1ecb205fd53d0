"""The curves_finetune stage main on tiny prepared splits, with a real MLflow store."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from stages import curves_finetune
from tests.conftest import stage_workdir, tiny_backbone
from transferlab import io, tracking
from transferlab.evaluation.curves.kshot import CSV_FILE, SUMMARY_FILE, read_rows
from transferlab.evaluation.statistics import family, verdict
from transferlab.models import strategies
from transferlab.params import load_params


def _stage_dir(root, **curves) -> dict:
    """The shipped params.yaml, shrunk, and prepared splits, as `prepare` leaves them."""
    return stage_workdir(
        root,
        (4, 2, 3),
        **tiny_backbone("none"),
        finetune={"epochs": 1, "batch_size": 8, "device": "cpu"},
        curves=curves,
    )


def _outputs(root, params) -> tuple[list[dict], dict]:
    out = root / params["paths"]["curves_finetune"]
    with open(out / CSV_FILE) as f:
        table = list(csv.DictReader(f))
    return table, io.read_json(out / SUMMARY_FILE)


def test_empty_list_writes_empty_valid_outputs_and_builds_no_model(
    mlflow_store, tmp_path, run_main, monkeypatch
):
    params = _stage_dir(tmp_path, shots=[1, 2, None], finetune=[])

    def build(*args, **kwargs):
        pytest.fail("a model was built for an empty curves.finetune")

    monkeypatch.setattr(strategies, "build_model", build)
    run_main(curves_finetune)
    table, summary = _outputs(tmp_path, params)
    assert [row["shots"] for row in table] == ["1", "2", "4"]  # x values, no series columns
    assert (summary["series"], summary["rows"], summary["shots_as_all"]) == ({}, [], [])
    assert "val is never read" in summary["selection"]  # how a k-shot fit selects, stated
    client = MlflowClient(mlflow_store)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'curves_finetune'")
    assert len(runs) == 1 and runs[0].data.metrics["fits"] == 0


@pytest.mark.slow
def test_listed_strategies_give_a_plot_column_and_a_series_each(mlflow_store, tmp_path, run_main):
    params = _stage_dir(tmp_path, shots=[1, None], seeds=2, finetune=["full", "scratch"])
    run_main(curves_finetune)
    table, summary = _outputs(tmp_path, params)
    # columns are the strategy names dvc.yaml's plot takes from curves.finetune
    assert list(table[0]) == ["shots", "full", "full_std", "scratch", "scratch_std"]
    assert set(summary["series"]) == {"finetune_full", "finetune_scratch"}
    rows = summary["rows"]
    assert len(rows) == 2 * 2 * 2
    test_images = 3 * 3  # three per class of three classes
    for name, series in summary["series"].items():
        assert set(series) == {"1", "all"}
        for shot, cell in series.items():
            accuracies = [r["accuracy"] for r in rows if (r["series"], r["shot"]) == (name, shot)]
            assert sorted(cell["by_seed"].values()) == sorted(accuracies)
            assert cell["mean"] == pytest.approx(np.mean(accuracies))
            assert all(a * test_images == pytest.approx(round(a * test_images)) for a in accuracies)
    # the CSV holds the summary's means, one row per shot count
    assert [float(row["full"]) for row in table] == pytest.approx(
        [summary["series"]["finetune_full"][shot]["mean"] for shot in ("1", "all")], abs=1e-6
    )
    # scratch listed: evaluate judges the others against it at every shot, on gains paired by
    # seed, from the rows and correctness the stage wrote
    out = tmp_path / params["paths"]["curves_finetune"]
    pairs = verdict.scratch_pairs(("full", "scratch"))
    comparisons = family.curve_comparisons(
        read_rows(out),
        pairs,
        config=load_params(tmp_path / "params.yaml").verdict,
        transferred=True,
    )
    assert list(comparisons) == ["finetune_full_vs_scratch"]
    comparison = comparisons["finetune_full_vs_scratch"]
    assert set(comparison) == {"1", "all"}
    accuracy = {(r["series"], r["shot"], r["seed"]): r["accuracy"] for r in rows}
    for shot, judged in comparison.items():
        gains = [
            accuracy[("finetune_full", shot, s)] - accuracy[("finetune_scratch", shot, s)]
            for s in (0, 1)
        ]
        assert judged["gain"] == pytest.approx(np.mean(gains), abs=1e-6)
        assert judged["verdict"] in ("positive", "negative", "inconclusive")
