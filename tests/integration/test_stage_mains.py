"""Stage mains run in this process on tiny prepared splits, as `python -m stages.<name>`
would run them: how they fail, and that a failed stage leaves no output behind."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from stages import finetune, prepare, scores
from tests.conftest import REPO, closed_port, stage_workdir, tiny_backbone
from transferlab import tracking
from transferlab.data.prepared import save_features
from transferlab.models import strategies
from transferlab.params import PIPELINE_FILE, load_paths


def test_prepare_stops_on_a_user_error_in_one_line_and_marks_its_run_failed(
    mlflow_store, tmp_path, capsys, run_main
):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(source="imagefolder", path=str(tmp_path / "nowhere"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(REPO / PIPELINE_FILE, tmp_path / PIPELINE_FILE)
    with pytest.raises(SystemExit) as exit_info:
        run_main(prepare)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: data.path" in err and "is not a folder" in err and "Traceback" not in err
    client = MlflowClient(mlflow_store)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    (run,) = client.search_runs([experiment.experiment_id], "tags.stage = 'prepare'")
    assert run.info.status == "FAILED"
    assert not (tmp_path / load_paths()["prepared"]).exists()


def test_nan_during_training_stops_the_stage_and_writes_no_checkpoint(
    tmp_path, monkeypatch, capsys, run_main
):
    params = stage_workdir(
        tmp_path,
        (4, 2, 2),
        **tiny_backbone("none"),
        finetune={"epochs": 1, "batch_size": 8, "device": "cpu"},
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")  # untracked
    build = strategies.build_model

    def broken(*args):
        model = build(*args)
        with torch.no_grad():
            model.get_classifier().weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(strategies, "build_model", broken)
    with pytest.raises(SystemExit) as exit_info:
        run_main(finetune, "full")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r"error: non-finite loss .* at epoch 1, step 1", err), err
    assert "Traceback" not in err
    assert not (tmp_path / params["paths"]["methods"]).exists()


def test_features_no_score_can_read_stop_the_scores_stage_in_one_line(
    tmp_path, monkeypatch, capsys, run_main
):
    params = stage_workdir(tmp_path, (4, 2, 2), **tiny_backbone())
    features = tmp_path / params["paths"]["features"] / "tiny"
    save_features(features, "train", np.zeros((12, 8), np.float32), np.repeat([0, 1, 2], 4))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")  # untracked
    with pytest.raises(SystemExit) as exit_info:
        run_main(scores, "tiny")
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert errors == [
        "error: logme of backbone 'tiny': features are all zero; they carry no information to "
        "score."
    ]
