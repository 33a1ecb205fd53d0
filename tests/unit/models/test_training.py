import copy
import dataclasses

import numpy as np
import pytest
import torch

from tests.conftest import TINY_MODEL, make_images, save_tiny_checkpoint
from transferlab import io
from transferlab.errors import UserError
from transferlab.models import backbone, depthwise, lora, training
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


@pytest.mark.parametrize("keep", ["best", "last"])
def test_train_model_learns_and_keeps_the_epoch_keep_names(params, keep):
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    input_cfg = backbone.input_config(model, 32)
    config = dataclasses.replace(
        params.finetune,
        epochs=3,
        batch_size=8,
        patience=3,
        keep=keep,
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
    scores = [row["val_accuracy"] for row in result.history]
    assert max(scores[1:]) >= 0.8  # ... and the separable blobs are told apart (chance: 1/3)
    # best: the first epoch at the best val accuracy (epoch 0, the start, is never kept);
    # last: the schedule's end, whatever val says
    epoch = scores.index(max(scores[1:]), 1) if keep == "best" else 3
    assert (result.kept_epoch, result.val_accuracy) == (epoch, scores[epoch])
    assert result.images_per_s > 0
    model.load_state_dict(result.state_dict)  # the kept weights are that epoch's
    probs = predict_proba(model, make_images(6, seed=1).images, input_cfg, batch_size=4, device=CPU)
    assert probs.shape == (18, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == make_images(6, seed=1).labels).mean() == scores[epoch]


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


@pytest.mark.parametrize("keep", ["best", "last"])
def test_early_stopping_ends_after_patience_epochs_without_gain(params, keep):
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    # lr so small that val accuracy cannot improve after epoch 1
    config = dataclasses.replace(
        params.finetune,
        epochs=6,
        batch_size=8,
        patience=2,
        keep=keep,
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
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3]  # stopped after 1 + 2
    assert result.kept_epoch == (1 if keep == "best" else 3)  # last: the last epoch run


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


TINY = Model(TINY_MODEL, "none", image_size=32, seed=0, min_image_size=32)


class UnreadableLabels:
    """Test images whose labels fail the test if anything reads them (or counts them)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    @property
    def labels(self) -> np.ndarray:
        raise AssertionError("test labels were read")

    def __len__(self) -> int:
        raise AssertionError("test labels were counted")


def fits_seen(monkeypatch) -> list[tuple[float, int, int]]:
    """(peak lr, epochs run, epochs of its schedule) of every train_model call from here on."""
    seen, real = [], training.train_model

    def spy(model, *, config, param_groups, stop_after=None, **kwargs):
        lr = max(g["lr"] for g in param_groups)
        seen.append((lr, stop_after or config.epochs, config.epochs))
        kwargs["stop_after"] = stop_after
        return real(model, config=config, param_groups=param_groups, **kwargs)

    monkeypatch.setattr(training, "train_model", spy)
    return seen


def search_config(params, rates: tuple[float, ...], *, epochs: int, search_epochs: int):
    return dataclasses.replace(
        params.finetune,
        epochs=epochs,
        search_epochs=search_epochs,
        batch_size=8,
        full=dataclasses.replace(params.finetune.full, lr=rates),
    )


def test_rates_are_searched_short_on_val_and_the_winner_trained_in_full(params, monkeypatch):
    # A planted search: 1e-12 and 1e-11 cannot move the weights, 1e-2 learns the blobs, so
    # val must pick 1e-2, wherever it stands in the list.
    config = search_config(params, (1e-12, 1e-2, 1e-11), epochs=2, search_epochs=1)
    seen = fits_seen(monkeypatch)
    test = make_images(6, seed=2)
    trained = train_strategy(
        "full", model_config=TINY, config=config, train=make_images(16),
        val=make_images(6, seed=1), num_classes=3, device=CPU, test=test,
    )  # fmt: skip
    # each rate for the first epoch of the whole schedule, then the winner alone in full
    assert seen == [(1e-12, 1, 2), (1e-2, 1, 2), (1e-11, 1, 2), (1e-2, 2, 2)]
    search = trained.applied["lr_search"]
    assert [row["lr"] for row in search["tried"]] == [1e-12, 1e-2, 1e-11]
    scores = [row["val_accuracy"] for row in search["tried"]]
    assert scores[1] > max(scores[0], scores[2])
    assert search["chosen"] == trained.applied["lr"] == 1e-2
    assert (search["epochs_each"], search["epochs"], search["in_full"]) == (1, 3, False)
    assert search["seconds"] > 0
    assert len(trained.result.history) == 1 + 2  # the kept model ran the whole schedule
    # the kept weights are the ones its test predictions came from
    again = predict_proba(trained.model, test.images, trained.input_cfg, batch_size=4, device=CPU)
    np.testing.assert_allclose(again, trained.test_probs, atol=1e-6)
    one = train_strategy(
        "full", model_config=TINY, config=config, train=make_images(16),
        val=make_images(6, seed=1), num_classes=3, device=CPU, rates=(1e-2,),
    )  # fmt: skip
    assert "lr_search" not in one.applied  # one rate: nothing was searched
    assert one.result.val_accuracy == trained.result.val_accuracy


def test_tied_rates_go_to_the_middle_and_a_full_length_search_is_not_retrained(params, monkeypatch):
    # Rates too small to change a prediction tie on val: grid_choice's rule takes the middle.
    config = search_config(params, (1e-12, 2e-12, 3e-12), epochs=1, search_epochs=3)
    seen = fits_seen(monkeypatch)
    trained = train_strategy(
        "full", model_config=TINY, config=config, train=make_images(16),
        val=make_images(6, seed=1), num_classes=3, device=CPU,
    )  # fmt: skip
    search = trained.applied["lr_search"]
    assert len({row["val_accuracy"] for row in search["tried"]}) == 1
    assert search["chosen"] == trained.applied["lr"] == 2e-12
    # search_epochs beyond epochs: each rate ran the whole schedule, the winner's run is kept
    assert seen == [(1e-12, 1, 1), (2e-12, 1, 1), (3e-12, 1, 1)] and search["in_full"]


def test_test_labels_are_never_read_and_only_the_kept_model_predicts_test(params, monkeypatch):
    config = search_config(params, (1e-12, 1e-2), epochs=1, search_epochs=1)
    test = UnreadableLabels(make_images(6, seed=2).images)
    predicted, real = [], training.predict_proba

    def spy(model, images, *args, **kwargs):
        predicted.append((images is test.images, id(model)))
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(training, "predict_proba", spy)
    trained = train_strategy(
        "full", model_config=TINY, config=config, train=make_images(16),
        val=make_images(6, seed=1), num_classes=3, device=CPU, test=test,
    )  # fmt: skip
    on_test = [i for i, (is_test, _) in enumerate(predicted) if is_test]
    assert on_test == [len(predicted) - 1]  # once, after every val score of the search
    assert predicted[-1][1] == id(trained.model) and trained.test_probs.shape == (18, 3)


def test_lora_keeps_its_adapter_and_predicts_test_with_it_merged(params, tmp_path):
    config = dataclasses.replace(params.finetune, epochs=1, batch_size=8)
    test = make_images(4, seed=2)
    trained = train_strategy(
        "lora", model_config=TINY, config=config, train=make_images(16),
        val=make_images(6, seed=1), num_classes=3, device=CPU, test=test,
    )  # fmt: skip
    assert trained.applied["lora"]["adapted_layers"] > 0
    merged = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    merged.load_state_dict(trained.result.state_dict)  # the checkpoint: a plain timm model
    cfg = trained.input_cfg
    probs = predict_proba(merged, test.images, cfg, batch_size=4, device=CPU)
    np.testing.assert_allclose(probs, trained.test_probs, atol=1e-6)
    io.save_arrays(tmp_path / io.ADAPTER_FILE, **trained.adapter)
    torch.manual_seed(config.seed)  # the backbone lora started from: train_at's seeded build
    fresh = build_model("lora", TINY_MODEL, "none", 3)
    lora.load_adapter(fresh, io.load_arrays(tmp_path / io.ADAPTER_FILE))
    reloaded = predict_proba(fresh, test.images, cfg, batch_size=4, device=CPU)
    np.testing.assert_allclose(reloaded, trained.test_probs, atol=1e-5)
    adapter_size = (tmp_path / io.ADAPTER_FILE).stat().st_size
    trainable = sum(a.size for k, a in trained.adapter.items() if k not in (lora.RANK, lora.ALPHA))
    assert trainable == trained.applied["trainable_parameters"]
    record = training.training_record("lora", [(0, trained)], adapter_bytes=adapter_size)
    assert record["adapter_bytes"] == adapter_size and record["train_seconds"] >= 0


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
    assert result.kept_epoch == 1  # epoch 0 is where it started, never the kept one


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


def test_training_on_cpu_routes_depthwise_weight_gradients(params):
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3)
    convs = [m for m in model.modules() if depthwise.padded_depthwise(m)]
    config = dataclasses.replace(params.finetune, epochs=1, batch_size=8)
    groups = param_groups(model, "full", config, 1e-3)
    training.setup(model, make_images(16), config, CPU, groups, "test")
    assert convs and all("forward" in vars(conv) for conv in convs)  # depthwise.py's route


def test_a_rate_trial_is_the_first_epochs_of_the_whole_run(params):
    # search_rates' trials stop a run early, on its own schedule: the peak is reached as in
    # the run the trial stands for (a short one-cycle of its own would decay before it)
    config = dataclasses.replace(params.finetune, epochs=3, batch_size=8, warmup_fraction=0.5)

    def run(stop_after):
        torch.manual_seed(0)
        model = build_model("full", TINY_MODEL, "none", 3)
        groups = param_groups(model, "full", config, 1e-2)
        result = train_model(
            model, train=make_images(16), val=make_images(6, seed=1),
            input_cfg=backbone.input_config(model, 32), config=config, device=CPU,
            param_groups=groups, bn="train", stop_after=stop_after,
        )  # fmt: skip
        return result, groups

    trial, trial_groups = run(2)
    whole, _ = run(None)
    assert len(trial.history) == 1 + 2 and len(whole.history) == 1 + 3
    assert trial.history == whole.history[:3]  # bit for bit: the same steps
    # the trial ends a third into the decay from its peak (lr 1e-2), where a one-cycle of its
    # own would have annealed to ~1e-6
    assert trial_groups[0]["lr"] > 0.5e-2
