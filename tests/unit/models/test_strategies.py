import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.conftest import TINY_MODEL, make_images
from transferlab import io
from transferlab.errors import UserError
from transferlab.models import backbone
from transferlab.models.strategies import (
    PARAMETER_EFFICIENT,
    freeze_stages,
    init_head_from_probe,
    param_groups,
    prepare,
    set_train_mode,
    trainable_parameters,
)


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
    one_step(model, param_groups(model, "freeze", config, config.freeze.lr[0]))
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
    groups = param_groups(model, "llrd", params.finetune, params.finetune.llrd.lr[0])
    lrs = [g["lr"] for g in groups]
    assert max(lrs) == pytest.approx(params.finetune.llrd.lr[0])
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


def decay_of(groups: list[dict]) -> dict[int, float]:
    return {id(p): g["weight_decay"] for g in groups for p in g["params"]}


@pytest.mark.parametrize(
    "strategy", ["full", "scratch", "lpft", "freeze", "llrd", "norm", "bitfit", "lora"]
)
def test_one_weight_decay_rule_no_decay_on_1d_parameters(params, strategy):
    model = tiny()
    if strategy == "freeze":
        freeze_stages(model, 2)
    if strategy in PARAMETER_EFFICIENT:
        prepare(model, strategy, params.finetune, None)
    own = getattr(params.finetune, strategy)
    decay = decay_of(param_groups(model, strategy, params.finetune, own.lr[0]))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert set(decay) == {id(p) for p in trainable}  # every trainable one, nothing frozen
    for p in trainable:
        assert decay[id(p)] == (0.0 if p.ndim <= 1 else params.finetune.weight_decay)


def intended(model: torch.nn.Module, strategy: str) -> set[str]:
    """What each parameter-efficient strategy should train, by name: its own and the head."""
    norms = {
        f"{name}.{p}"
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        for p, _ in m.named_parameters(recurse=False)
    }
    names = [name for name, _ in model.named_parameters()]
    own = {
        "norm": norms,
        "bitfit": {n for n in names if n.endswith(".bias")},
        "lora": {n for n in names if ".lora_A." in n or ".lora_B." in n},
    }[strategy]
    return own | {n for n in names if n.startswith("classifier.")}


@pytest.mark.parametrize("strategy", ["norm", "bitfit", "lora"])
def test_parameter_efficient_strategies_train_exactly_their_parameters_and_the_head(
    params, strategy
):
    model = tiny()
    applied = prepare(model, strategy, params.finetune, None)
    chosen = intended(model, strategy)
    assert applied["trained_tensors"] == len(chosen) - 2  # the head's weight and bias aside
    if strategy == "bitfit":  # the tiny model's convolutions have biases only in SE blocks
        assert any(".se." in n for n in chosen) and any(".bn" in n for n in chosen)
    groups = param_groups(model, strategy, params.finetune, 1e-2)
    counted = sum(p.numel() for n, p in model.named_parameters() if n in chosen)
    assert trainable_parameters(groups) == counted  # what the recommendation's cost reads
    before = {k: v.clone() for k, v in model.state_dict().items()}
    set_train_mode(model, "frozen")  # the shipped policy of every parameter-efficient arm
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 3
    torch.nn.functional.cross_entropy(model(x), y).backward()
    torch.optim.AdamW(groups).step()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == chosen
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved <= chosen  # everything else, BatchNorm statistics included, bit-identical
    assert {n for n in chosen if model.get_parameter(n).grad.abs().sum() > 0} <= moved
    assert "classifier.weight" in moved


def test_llrd_differs_from_full_only_by_its_learning_rates(params):
    model = tiny()
    config = params.finetune
    full = param_groups(model, "full", config, 1e-3)
    llrd = param_groups(model, "llrd", config, 1e-3)
    assert decay_of(full) == decay_of(llrd)
    assert {g["lr"] for g in full} == {1e-3}
    assert len({g["lr"] for g in llrd}) > 1


def bn_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_frozen_batchnorm_keeps_its_statistics_and_trains_its_affine_parameters(params):
    model = tiny()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    affine = {id(m.weight): m.weight.detach().clone() for m in bn_layers(model)}
    groups = param_groups(model, "full", params.finetune, 1e-2)
    set_train_mode(model, "frozen")
    assert model.training and not any(m.training for m in bn_layers(model))
    x, y = torch.randn(8, 3, 32, 32) * 3 + 1, torch.arange(8) % 3
    optimizer = torch.optim.AdamW(groups)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in stats.items())
    assert any(not torch.equal(m.weight, affine[id(m.weight)]) for m in bn_layers(model))
    set_train_mode(model, "train")
    assert all(m.training for m in bn_layers(model))


@pytest.fixture(scope="module")
def fashion_mnist_sample():
    """512 Fashion-MNIST train images (the test split's first 512 for the check), real data:
    BatchNorm's batch statistics differ from ImageNet's running ones only on real images."""
    from transferlab.data.fashion_mnist import read_fashion_mnist

    root = Path("/usr/share/datasets/fashion-mnist")
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (make data)")
    data = read_fashion_mnist(root)
    return data.train.images[:512], data.train.labels[:512]


@pytest.mark.parametrize("bn", ["frozen", "train"])
def test_lpft_starts_at_its_probe_under_training_conditions_only_with_frozen_batchnorm(
    tmp_path, params, fashion_mnist_sample, bn
):
    """LP-FT as published: the probe is fitted on eval-mode features; at step 0, in the mode
    training uses, the model with the probe folded in scores as the probe does. With
    BatchNorm in train mode the same head meets other features and falls towards chance."""
    images, labels = fashion_mnist_sample
    model = backbone.create_backbone("tf_efficientnet_lite0", "bundled", num_classes=10)
    cfg = backbone.input_config(model, 64)
    x = backbone.to_model_input(torch.from_numpy(images.copy()), cfg)
    with torch.no_grad():
        model.eval()
        features = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    scaler = StandardScaler().fit(features)
    probe = LogisticRegression(C=0.1, max_iter=1000).fit(scaler.transform(features), labels)
    probe_accuracy = probe.score(scaler.transform(features), labels)
    io.save_arrays(
        tmp_path / io.HEAD_FILE,
        mean=scaler.mean_,
        scale=scaler.scale_,
        coef=probe.coef_,
        intercept=probe.intercept_,
        C=np.float64(0.1),
    )
    prepare(model, "lpft", params.finetune, tmp_path)
    set_train_mode(model, bn)
    with torch.no_grad():  # training's batches of 64
        predicted = torch.cat([model(batch).argmax(1) for batch in x.split(64)]).numpy()
    step0_accuracy = float((predicted == labels).mean())
    assert probe_accuracy > 0.8
    if bn == "frozen":
        assert abs(step0_accuracy - probe_accuracy) <= 0.01
    else:
        assert step0_accuracy < probe_accuracy - 0.3
