import dataclasses

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.conftest import TINY_MODEL, make_images
from transferlab import io
from transferlab.errors import UserError
from transferlab.models import backbone
from transferlab.models.strategies import freeze_stages, init_head_from_probe, param_groups, prepare


def tiny(num_classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return backbone.create_backbone(TINY_MODEL, "none", num_classes=num_classes)


def one_step(model: torch.nn.Module, groups: list[dict]) -> None:
    x = torch.randn(8, 3, 32, 32)
    y = torch.arange(8) % 3
    optimizer = torch.optim.AdamW(groups)
    model.train()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def test_freeze_keeps_parameters_and_bn_statistics_of_the_first_stages(params):
    model = tiny()
    frozen = freeze_stages(model, 2)
    assert "conv_stem" in frozen and any(n.startswith("blocks.1") for n in frozen)
    assert not any(n.startswith("blocks.2") for n in frozen)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = dataclasses.replace(
        params.finetune, freeze=dataclasses.replace(params.finetune.freeze, stages=2)
    )
    one_step(model, param_groups(model, "freeze", config))
    after = model.state_dict()
    early = [k for k in before if k.startswith(("conv_stem", "bn1", "blocks.0", "blocks.1"))]
    late = [k for k in before if k.startswith("blocks.3")]
    assert any("running_mean" in k for k in early)  # BN statistics are among those checked
    for key in early:
        assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[k], after[k]) for k in late if "running_mean" in k)
    assert any(not torch.equal(before[k], after[k]) for k in late if k.endswith("weight"))


def test_freeze_zero_stages_freezes_nothing_and_too_many_is_named():
    model = tiny()
    assert freeze_stages(model, 0) == []
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(UserError, match="finetune.freeze.stages"):
        freeze_stages(tiny(), 99)


def test_llrd_groups_decay_towards_the_input(params):
    model = tiny()
    groups = param_groups(model, "llrd", params.finetune)
    lrs = [g["lr"] for g in groups]
    assert max(lrs) == pytest.approx(params.finetune.llrd.lr)
    assert min(lrs) < max(lrs) * params.finetune.llrd.layer_decay
    covered = {id(p) for g in groups for p in g["params"]}
    assert covered == {id(p) for p in model.parameters()}
    stem = model.conv_stem.weight
    head = model.get_classifier().weight
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lr_of[id(stem)] < lr_of[id(head)]


@pytest.mark.parametrize("num_classes", [3, 2])
def test_lpft_head_starts_equal_to_the_probe(tmp_path, params, num_classes):
    model = tiny(num_classes).eval()
    images = make_images(10, n_classes=num_classes, size=32)
    x = backbone.to_model_input(torch.from_numpy(images.images), backbone.input_config(model, 32))
    with torch.no_grad():
        features = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    scaler = StandardScaler().fit(features)
    probe = LogisticRegression(C=1.0, max_iter=500).fit(scaler.transform(features), images.labels)
    io.save_arrays(
        tmp_path / io.HEAD_FILE,
        mean=scaler.mean_,
        scale=scaler.scale_,
        coef=probe.coef_,
        intercept=probe.intercept_,
        C=np.float64(1.0),
    )
    assert prepare(model, "lpft", params.finetune, tmp_path) == {"head": "probe"}
    with torch.no_grad():
        logits = model(x).double().numpy()
    expected = probe.decision_function(scaler.transform(features))
    if num_classes == 2:
        expected = np.stack([np.zeros_like(expected), expected], 1)
    assert np.allclose(logits, expected, atol=1e-3)
    assert np.array_equal(logits.argmax(1), probe.predict(scaler.transform(features)))


def test_lpft_head_of_another_shape_is_a_user_error():
    model = tiny(3)
    head = {
        "mean": np.zeros(5),
        "scale": np.ones(5),
        "coef": np.zeros((3, 5)),
        "intercept": np.zeros(3),
    }
    with pytest.raises(UserError, match="rerun the probe"):
        init_head_from_probe(model, head)
