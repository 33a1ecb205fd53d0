import dataclasses

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from sklearn.datasets import load_sample_images

from tests.conftest import TINY_MODEL
from transferlab.errors import UserError
from transferlab.models import backbone
from transferlab.models.backbone import input_side, spec_side
from transferlab.params import Model

PALACE, DAISY = 698, 985  # ImageNet classes of sklearn's china.jpg and flower.jpg
ESPRESSO, CATS, MOTORBIKES = 967, set(range(281, 286)), {665, 670}  # moped, motor scooter


def classify_samples(model: torch.nn.Module, images: list[np.ndarray] | None = None) -> list[int]:
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model))
    images = load_sample_images().images if images is None else images
    batch = torch.stack([transform(Image.fromarray(i)) for i in images])
    with torch.inference_mode():
        return model.eval()(batch).argmax(1).tolist()


def scikit_image_samples() -> list[np.ndarray]:
    """coffee, chelsea (a cat) and a motorcycle, from scikit-image's bundled sample images."""
    from skimage import data  # a dev dependency (pyproject.toml): make test installs it

    return [data.coffee(), data.chelsea(), data.stereo_motorcycle()[0]]


def test_bundled_weights_classify_sample_images():
    model = backbone.create_backbone("tf_efficientnet_lite0", "bundled", num_classes=1000)
    assert classify_samples(model) == [PALACE, DAISY]


@pytest.mark.parametrize("name", sorted(backbone.BUNDLED))
def test_every_bundled_set_classifies_photos(name):
    # Measured: china.jpg is the palace on all three; flower.jpg is a daisy on lite0 only
    # (honeycomb, 599, on lite1 and lite2), so the other photos carry the check.
    model = backbone.create_backbone(name, "bundled", num_classes=1000)
    china, coffee, cat, motorbike = classify_samples(
        model, [load_sample_images().images[0], *scikit_image_samples()]
    )
    assert (china, coffee) == (PALACE, ESPRESSO)
    assert cat in CATS and motorbike in MOTORBIKES


def test_bundled_weights_belong_to_the_tf_variant():
    # Same tensors in efficientnet_lite0 (PyTorch padding, ImageNet mean/std): the flower fails.
    model = timm.create_model("efficientnet_lite0")
    model.load_state_dict(backbone.bundled_state_dict(model, "tf_efficientnet_lite0"), strict=True)
    assert classify_samples(model)[1] != DAISY


@pytest.mark.parametrize(
    ("name", "depths"),
    [
        ("tf_efficientnet_lite0", [1, 2, 2, 3, 3, 4, 1]),
        ("tf_efficientnet_lite1", [1, 3, 3, 4, 4, 5, 1]),
        ("tf_efficientnet_lite2", [1, 3, 3, 4, 4, 5, 1]),
    ],
)
def test_remap_covers_every_timm_key(name, depths):
    model = timm.create_model(name)
    remapped = backbone.bundled_state_dict(model, name)
    assert set(remapped) == set(model.state_dict())
    assert backbone.block_depths(model) == depths


def test_bundled_only_for_its_model():
    with pytest.raises(UserError, match="'bundled' weights exist only for tf_efficientnet_lite0, "):
        backbone.create_backbone("resnet18", "bundled")


def test_unknown_model_is_user_error():
    with pytest.raises(UserError, match="unknown timm model 'no_such_net'"):
        backbone.create_backbone("no_such_net", "none")


def test_checkpoint_path_round_trip(tmp_path):
    source = backbone.create_backbone(TINY_MODEL, "none", num_classes=1000)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    loaded = backbone.create_backbone(TINY_MODEL, str(path), num_classes=0)
    key = "conv_stem.weight"
    assert torch.equal(loaded.state_dict()[key], source.state_dict()[key])
    with pytest.raises(UserError, match="not a file"):
        backbone.create_backbone(TINY_MODEL, str(tmp_path / "missing.pth"))


def test_a_checkpoint_in_another_layout_stops_before_loading(tmp_path):
    # A stage whose validate was skipped fails as validate would: one line with the counts.
    source = timm.create_model(TINY_MODEL)
    path = tmp_path / "torchvision_like.pth"
    torch.save({f"features.{k}": v for k, v in source.state_dict().items()}, path)
    with pytest.raises(UserError) as caught:
        backbone.create_backbone(TINY_MODEL, str(path), candidate="tv")
    message = str(caught.value)
    assert message.startswith(f"backbones.tv ({TINY_MODEL}): weights: {path} does not fit")
    assert "0 of the model's " in message and "\n" not in message


def test_a_checkpoint_without_its_head_loads_and_gets_a_new_one(tmp_path):
    source = backbone.create_backbone(TINY_MODEL, "none", num_classes=0)
    path = tmp_path / "headless.pth"
    torch.save(source.state_dict(), path)
    loaded = backbone.create_backbone(TINY_MODEL, str(path), num_classes=7)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 7)


def test_hub_offline_names_the_candidate(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise LocalEntryNotFoundError("cannot find the requested files in the local cache")
        raise AssertionError("only the download is expected")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(UserError, match=r"^backbones\.hubby \(test_efficientnet\): weights: hub "):
        backbone.create_backbone(TINY_MODEL, "hub", candidate="hubby")


def test_features_head_and_new_head():
    x = torch.zeros(2, 3, 32, 32)
    features = backbone.create_backbone(TINY_MODEL, "none", num_classes=0)
    assert features(x).shape == (2, timm.create_model(TINY_MODEL).num_features)  # pooled
    assert backbone.create_backbone(TINY_MODEL, "none", num_classes=7)(x).shape == (2, 7)


def test_input_config_comes_from_timm():
    model = timm.create_model("tf_efficientnet_lite0")
    config = backbone.input_config(model, None)
    assert config.size == 224 and config.mean == (0.5, 0.5, 0.5) and config.std == (0.5, 0.5, 0.5)
    assert config.interpolation == "bicubic"
    assert backbone.input_config(model, 64).size == 64
    spec = Model("tf_efficientnet_lite0", "none", "auto", 0, 48)  # a candidate, as params build it
    assert backbone.spec_input(model, spec, stored=28) == dataclasses.replace(config, size=48)
    assert backbone.spec_input(model, spec, stored=512).size == 224


def test_to_model_input_resizes_normalises_and_expands_grey():
    config = backbone.InputConfig(8, (0.5,) * 3, (0.5,) * 3, "bilinear")
    images = torch.full((2, 4, 4, 1), 255, dtype=torch.uint8)
    x = backbone.to_model_input(images, config)
    assert x.shape == (2, 3, 8, 8)
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, torch.ones_like(x))


def test_uint8_batches_pad_the_last_batch():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    batches = list(backbone.uint8_batches(images, 4, torch.device("cpu")))
    assert [valid for _, valid in batches] == [4, 4, 2]
    assert all(batch.shape[0] == 4 for batch, _ in batches)


class _Payload:
    """Unpickling this would run code; weights_only loading must refuse it."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_checkpoint_with_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Payload()}, path)
    with pytest.raises(UserError, match="cannot load .*evil.pth as plain weights"):
        backbone.create_backbone(TINY_MODEL, str(path))
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("setting", "stored", "expected"),
    [
        ("auto", 28, 48),  # Fashion-MNIST: raised to the floor
        ("auto", 224, 224),  # photos stored at the model's own side
        ("auto", 96, 96),  # a smaller stored side: no upsampling past it
        ("auto", 512, 224),  # capped at the model's own side
        (None, 28, 224),  # null: the model's own
        (64, 512, 64),  # a number: as given
    ],
)
def test_the_input_side_follows_the_data_unless_set(setting, stored, expected):
    assert input_side(setting, native=224, stored=stored, floor=48) == expected


def test_a_candidates_side_is_known_before_any_weights_are_read():
    spec = Model("tf_efficientnet_lite1", "bundled", "auto", 0, 48)
    assert spec_side(spec, stored=512) == 240  # lite1's own side, from timm's config
    assert spec_side(spec, stored=28) == 48
    with pytest.raises(UserError, match="unknown timm model 'no_such_net'"):
        spec_side(Model("no_such_net", "none", "auto", 0, 48), stored=28)
