"""`dvc repro` on a user's image folder: reports written, tracked and logged; extract reads it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests import hostile
from transferlab import tracking

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(imagefolder_workspace):
    imagefolder_workspace.dvc("repro", "extract@tiny")
    return imagefolder_workspace


def test_reports_name_every_bad_file(prepared):
    rejects = json.loads((prepared.root / "reports" / "rejects.json").read_text())
    assert [(r["file"], r["reason"]) for r in rejects["rejected"]] == [
        ("cat/empty.jpg", "empty"),
        ("cat/truncated.jpg", "truncated"),
        ("dog/notes.jpg", "not-an-image"),
    ]
    duplicates = json.loads((prepared.root / "reports" / "duplicates.json").read_text())
    assert duplicates["summary"]["label_conflicts"] == 1
    card = json.loads((prepared.root / "reports" / "data_card.json").read_text())
    assert card["classes"] == ["cat", "dog"] and card["image_shape"] == [hostile.SIZE] * 2 + [3]
    assert sum(card["splits"][s]["total"] for s in ("train", "val", "test")) == 23


def test_extract_embeds_every_prepared_rgb_image(prepared):
    root = prepared.root / "data"
    report = json.loads((prepared.root / "reports" / "extract" / "tiny.json").read_text())
    total = 0
    for split in ("train", "val", "test"):
        images = np.load(root / "prepared" / f"{split}_images.npy", mmap_mode="r")
        assert images.shape[1:] == (hostile.SIZE, hostile.SIZE, 3)
        features = np.load(root / "features" / "tiny" / f"{split}_features.npy")
        assert features.shape == (len(images), report["feature_dim"])
        np.testing.assert_array_equal(
            np.load(root / "features" / "tiny" / f"{split}_labels.npy"),
            np.load(root / "prepared" / f"{split}_labels.npy"),
        )
        total += len(images)
    assert report["images"] == total == 23


def test_reports_reach_mlflow(prepared):
    client = MlflowClient(f"sqlite:///{prepared.root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    (run,) = client.search_runs([experiment.experiment_id], "tags.stage = 'prepare'")
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"rejects.json", "duplicates.json", "data_card.json"} <= logged


def test_a_new_image_reruns_prepare(prepared):
    assert prepared.dvc("status", "prepare").stdout.strip().endswith("up to date.")
    hostile.save_noise(prepared.root / "data" / "raw" / "pets" / "cat" / "new.png", seed=555)
    assert "prepare" in json.loads(prepared.dvc("status", "--json").stdout)
