"""The bundled backbones against a random-init one on real Fashion-MNIST images: the
scores themselves (not only the ranking rule) put random init last."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import REPO
from transferlab.data.fashion_mnist import read_fashion_mnist
from transferlab.evaluation.scores.transferability import SCORES
from transferlab.evaluation.statistics import ranking
from transferlab.models import backbone
from transferlab.models.backbone import BUNDLED
from transferlab.models.extract import extract_features, frozen_backbone
from transferlab.params import Candidate, load_params

pytestmark = pytest.mark.slow
FMNIST = Path("/usr/share/datasets/fashion-mnist")
SHIPPED = load_params(REPO / "params.yaml")  # the shipped input-side rule: 48 px here
PER_CLASS = 50


@pytest.fixture(scope="module")
def images():
    if not (FMNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (make data)")
    train = read_fashion_mnist(FMNIST).train
    index = np.concatenate([np.flatnonzero(train.labels == c)[:PER_CLASS] for c in range(10)])
    return train.subset(index)


def scored(name: str, weights: str, images) -> dict:
    cpu = torch.device("cpu")
    model = frozen_backbone(name, weights, seed=0, device=cpu)
    spec = SHIPPED.backbone.build(Candidate(name, weights))
    config = backbone.spec_input(model, spec, stored=images.images.shape[1])
    features = extract_features(model, images.images, config, batch_size=100, device=cpu)
    scores = {score: fn(features, images.labels) for score, fn in SCORES.items()}
    return {"pretrained": weights != "none", **scores}


def test_random_init_scores_below_every_bundled_backbone(images):
    rows = {
        name.removeprefix("tf_efficientnet_"): scored(name, "bundled", images) for name in BUNDLED
    }
    rows["random"] = scored("tf_efficientnet_lite0", "none", images)
    for score in SCORES:
        pretrained = [row[score] for key, row in rows.items() if key != "random"]
        assert rows["random"][score] < min(pretrained), (score, rows)
        assert ranking.rank(rows, score)[-1] == "random"
