import copy
import dataclasses

import numpy as np
import pytest
import torch

from tests.conftest import TINY_MODEL, make_images, save_tiny_checkpoint
from transferlab.errors import UserError
from transferlab.models import backbone, training
from transferlab.models.strategies import build_model, param_groups
from transferlab.models.training import augment, predict_proba, train_model, train_strategy
from transferlab.params import Model

CPU = torch.device("cpu")


def test_augment_shapes_range_and_seeded():
    config = backbone.InputConfig(24, (0.5,) * 3, (0.5,) * 3, "bilinear")
    images = torch.from_numpy(make_images(2).images)
    a = augment(images, config, torch.Generator().manual_seed(0))
    b = augment(images, config, torch.Generator().manual_seed(0))
    c = augment(images, config, torch.Generator().manual_seed(1))
    assert a.shape == (6, 3, 24, 24) and a.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Shifts stay within an eighth of the side: the centre is always the image's own pixels,
    # normalised with the config's mean and std (white -> +1, black -> -1).
    for value, expected in ((255, 1.0), (0, -1.0)):
        flat = torch.full((4, 8, 8, 1), value, dtype=torch.uint8)
        centre = augment(flat, config, torch.Generator().manual_seed(0))[:, :, 12, 12]
        torch.testing.assert_close(centre, torch.full((4, 3), expected))


def test_scratch_is_randomly_initialised(tmp_path):
    weights = str(save_tiny_checkpoint(tmp_path / "tiny.pth"))
    saved = torch.load(weights, weights_only=True)
    pretrained = build_model("full", TINY_MODEL, weights, 10)
    scratch = build_model("scratch", TINY_MODEL, weights, 10)
    key = "conv_stem.weight"
    assert torch.equal(pretrained.state_dict()[key], saved[key])  # the checkpoint's weights
    assert not torch.equal(scratch.state_dict()[key], saved[key])  # ignored by scratch
    assert pretrained.num_classes == scratch.num_classes == 10


def test_train_model_learns_and_keeps_best(params):
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    input_cfg = backbone.input_config(model, 32)
    config = dataclasses.replace(
        params.finetune,
        epochs=3,
        batch_size=8,
        patience=3,
        full=dataclasses.replace(params.finetune.full, lr=(1e-2,)),
    )
    result = train_model(
        model,
        train=make_images(16),
        val=make_images(6, seed=1),
        input_cfg=input_cfg,
        config=config,
        device=CPU,
        param_groups=param_groups(model, "full", config, config.full.lr[0]),
        bn="train",
    )
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3]
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] - 0.05, losses  # it learns: the loss falls ...
    best = max(row["val_accuracy"] for row in result.history[1:])  # epoch 0: the start
    assert best >= 0.8  # ... and the separable blobs are told apart far above chance (1/3)
    assert result.best_val_accuracy == best
    assert result.history[result.best_epoch]["val_accuracy"] == best
    assert result.images_per_s > 0
    model.load_state_dict(result.state_dict)
    probs = predict_proba(model, make_images(6, seed=1).images, input_cfg, batch_size=4, device=CPU)
    assert probs.shape == (18, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == make_images(6, seed=1).labels).mean() == best


def test_non_finite_loss_stops_with_step_and_epoch(params):
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    with torch.no_grad():
        model.get_classifier().weight.fill_(float("nan"))
    with pytest.raises(UserError, match="non-finite loss .* at epoch 1, step 1"):
        train_model(
            model,
            train=make_images(8),
            val=make_images(2),
            input_cfg=backbone.input_config(model, 32),
            config=dataclasses.replace(params.finetune, epochs=1, batch_size=4),
            device=CPU,
            param_groups=param_groups(model, "full", params.finetune, params.finetune.full.lr[0]),
            bn="train",
        )


def test_early_stopping_ends_after_patience_epochs_without_gain(params):
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    # lr so small that val accuracy cannot improve after epoch 1
    config = dataclasses.replace(
        params.finetune,
        epochs=6,
        batch_size=8,
        patience=2,
        full=dataclasses.replace(params.finetune.full, lr=(1e-12,)),
    )
    result = train_model(
        model,
        train=make_images(8),
        val=make_images(4, seed=1),
        input_cfg=backbone.input_config(model, 32),
        config=config,
        device=CPU,
        param_groups=param_groups(model, "full", config, config.full.lr[0]),
        bn="train",
    )
    assert result.best_epoch == 1
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3]


def test_random_erase_blanks_one_rectangle_per_chosen_image_and_keeps_the_default_stream():
    config = backbone.InputConfig(32, (0.5,) * 3, (0.5,) * 3, "bilinear")
    images = torch.full((64, 8, 8, 1), 255, dtype=torch.uint8)  # white: the mean is 0
    plain = augment(images, config, torch.Generator().manual_seed(0))
    unerased = augment(images, config, torch.Generator().manual_seed(0), erase=0.0)
    erased = augment(images, config, torch.Generator().manual_seed(0), erase=0.5)
    assert torch.equal(plain, unerased)  # erase=0 draws nothing extra
    changed = (erased != plain).any(dim=1)  # (B, S, S): pixels set to the mean colour
    assert (erased.permute(0, 2, 3, 1)[changed] == 0).all()
    hit = changed.flatten(1).any(1)
    assert 16 < int(hit.sum()) < 48  # about half the images, at p = 0.5
    for mask in changed[hit]:  # each erased region is one axis-aligned rectangle
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()
        assert 0.02 * 32 * 32 * 0.5 <= mask.sum() <= 32 * 32 / 3 + 2 * 32


def test_a_list_of_learning_rates_trains_each_and_keeps_the_best_on_val(params):
    # 1e-12 cannot move the weights; 1e-2 learns the blobs: the kept one is 1e-2, wherever
    # it stands in the list, and both are recorded.
    config = dataclasses.replace(
        params.finetune,
        epochs=2,
        batch_size=8,
        full=dataclasses.replace(params.finetune.full, lr=(1e-12, 1e-2)),
    )
    model = Model(TINY_MODEL, "none", image_size=32, seed=0, min_image_size=32)
    trained = train_strategy(
        "full",
        model_config=model,
        config=config,
        train=make_images(16),
        val=make_images(6, seed=1),
        num_classes=3,
        device=CPU,
        test=make_images(6, seed=2),
    )
    search = trained.applied["lr_search"]
    assert [row["lr"] for row in search] == [1e-12, 1e-2]
    assert trained.applied["lr"] == 1e-2 and trained.applied["bn"] == config.full.bn
    assert trained.result.best_val_accuracy == max(row["best_val_accuracy"] for row in search)
    assert search[0]["best_val_accuracy"] < search[1]["best_val_accuracy"]
    # the kept weights are the ones its test predictions came from
    again = predict_proba(
        trained.model, make_images(6, seed=2).images, trained.input_cfg, batch_size=4, device=CPU
    )
    np.testing.assert_allclose(again, trained.test_probs, atol=1e-6)
    one = train_strategy(
        "full",
        model_config=model,
        config=config,
        train=make_images(16),
        val=make_images(6, seed=1),
        num_classes=3,
        device=CPU,
        rates=(1e-2,),
    )
    assert "lr_search" not in one.applied  # one rate: nothing was searched
    assert one.result.best_val_accuracy == trained.result.best_val_accuracy


def test_history_starts_before_the_first_update(params):
    """Epoch 0 is the model as built: its val accuracy is the untrained model's, and its
    training loss is measured without changing the weights or BatchNorm's statistics."""
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    input_cfg = backbone.input_config(model, 32)
    val = make_images(6, seed=1)
    untrained = predict_proba(copy.deepcopy(model), val.images, input_cfg, batch_size=4, device=CPU)
    config = dataclasses.replace(params.finetune, epochs=1, batch_size=8)
    result = train_model(
        model,
        train=make_images(16),
        val=val,
        input_cfg=input_cfg,
        config=config,
        device=CPU,
        param_groups=param_groups(model, "full", config, 1e-12),
        bn="train",
    )
    start = result.history[0]
    assert start["epoch"] == 0
    assert start["val_accuracy"] == float((untrained.argmax(1) == val.labels).mean())
    assert np.isfinite(start["train_loss"]) and start["train_loss"] > 0
    assert result.best_epoch == 1  # epoch 0 is where it started, never the kept one


def test_the_starting_loss_leaves_weights_and_batchnorm_statistics_as_they_were(params):
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    input_cfg = backbone.input_config(model, 32)
    config = dataclasses.replace(params.finetune, epochs=1, batch_size=8)
    train = make_images(16)
    loop = training.setup(
        model, train, config, CPU, param_groups(model, "full", config, 1e-3), "test"
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = training.starting_loss(loop, train, input_cfg, config, CPU, "train")
    assert loss > 0
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
