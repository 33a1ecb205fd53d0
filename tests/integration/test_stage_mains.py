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
from tests.conftest import REPO, TINY_MODEL, closed_port, stage_workdir, tiny_backbone
from transferlab import io, tracking
from transferlab.data.layout import save_features
from transferlab.models import backbone, lora, strategies
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


def test_the_lora_stage_keeps_its_adapter_apart_and_records_its_size_and_search(
    tmp_path, monkeypatch, run_main
):
    lora_section = {"lr": [1e-3, 1e-2], "bn": "frozen", "rank": 2, "alpha": 2}
    params = stage_workdir(
        tmp_path,
        (4, 2, 2),
        **tiny_backbone("none"),
        finetune={
            "epochs": 1,
            "search_epochs": 1,
            "batch_size": 8,
            "device": "cpu",
            "strategies": ["full", "lora", "scratch"],
            "lora": {**lora_section, "targets": ["conv_pw", "conv_pwl", "conv_head"]},
        },
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")  # untracked
    run_main(finetune, "lora")
    out = tmp_path / params["paths"]["methods"] / "lora" / "tiny"
    record = io.read_json(out / io.RECORD_FILE)
    assert record["adapter_bytes"] == (out / io.ADAPTER_FILE).stat().st_size > 0
    assert [row["lr"] for row in record["lr_search"]["tried"]] == [1e-3, 1e-2]
    assert record["lr"] == record["lr_search"]["chosen"] and record["train_seconds"] >= 0
    adapter = io.load_arrays(out / io.ADAPTER_FILE)
    counted = sum(a.size for k, a in adapter.items() if k not in (lora.RANK, lora.ALPHA))
    assert counted == record["trainable_parameters"]  # the adapters and the head
    saved = torch.load(out / io.CHECKPOINT_FILE, weights_only=True)
    merged = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    merged.load_state_dict(saved["model"])  # a plain timm model: the adapters merged in
    assert saved["config"]["lora"]["rank"] == 2
