"""A checkpoint is checked against its timm model's keys and shapes before it is loaded, and
a hub download that cannot happen is one line naming the candidate; never a real download."""

import re
import urllib.error

import pytest
import requests
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError

from tests.conftest import TINY_MODEL
from transferlab.errors import UserError
from transferlab.models import pretrained
from transferlab.params import Candidate


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(TINY_MODEL)


def weights_of(model: torch.nn.Module) -> list[str]:
    """The keys the check compares: no classifier head, no BatchNorm counter."""
    return [
        key
        for key in model.state_dict()
        if not key.startswith("classifier.") and not key.endswith("num_batches_tracked")
    ]


def renamed(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under torchvision-like names ('features.…')."""
    return {f"features.{key}": value for key, value in model.state_dict().items()}


def test_its_own_state_dict_fits(tiny):
    assert pretrained.checkpoint_mismatch(tiny.state_dict(), tiny) is None


def test_the_head_is_ignored_absent_or_of_another_size(tiny):
    state = tiny.state_dict()
    headless = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    assert pretrained.checkpoint_mismatch(headless, tiny) is None
    ten_classes = {**headless, "classifier.weight": torch.zeros(10, tiny.num_features)}
    assert pretrained.checkpoint_mismatch(ten_classes, tiny) is None


def test_renamed_keys_name_the_counts_and_an_example(tiny):
    state = renamed(tiny)
    own = len(weights_of(tiny))
    theirs = sum(not key.endswith("num_batches_tracked") for key in state)
    assert pretrained.checkpoint_mismatch(state, tiny) == (
        f"0 of the model's {own} keys match "
        f"({theirs} unexpected, e.g. 'features.conv_stem.weight'; {own} missing)"
    )


def test_a_shape_mismatch_names_both_shapes(tiny):
    state = {**tiny.state_dict(), "conv_stem.weight": torch.zeros(4, 3, 3, 3)}
    own = len(weights_of(tiny))
    shape = tuple(tiny.conv_stem.weight.shape)
    assert pretrained.checkpoint_mismatch(state, tiny) == (
        f"{own - 1} of the model's {own} keys match (1 of another shape, e.g. "
        f"'conv_stem.weight': (4, 3, 3, 3) in the file, {shape} in the model)"
    )


def test_a_missing_key_is_named_when_the_rest_match(tiny):
    state = tiny.state_dict()
    gone = weights_of(tiny)[5]
    del state[gone]
    assert f"1 missing, e.g. {gone!r}" in pretrained.checkpoint_mismatch(state, tiny)


def test_validate_check_names_the_candidate_file_counts_and_what_to_do(tiny, tmp_path):
    path = tmp_path / "torchvision_like.pth"
    torch.save(renamed(tiny), path)
    backbones = {
        "hubby": Candidate(TINY_MODEL, "hub"),  # not a file: left to the hub
        "tv": Candidate(TINY_MODEL, str(path)),
    }
    with pytest.raises(UserError) as caught:
        pretrained.check_checkpoints(backbones)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"backbones.tv ({TINY_MODEL}): weights: {path} does not fit")
    assert f"0 of the model's {len(weights_of(tiny))} keys match" in message
    assert "e.g. 'features.conv_stem.weight'" in message
    assert "convert the checkpoint to timm's layout" in message
    assert "e.g. 'conv_stem.weight'" in message and "weights: hub" in message


def test_validate_check_passes_a_fitting_checkpoint_and_skips_named_weights(tiny, tmp_path):
    path = tmp_path / "own.pth"
    torch.save({"state_dict": tiny.state_dict()}, path)  # wrapped, as training scripts save
    pretrained.check_checkpoints(
        {
            "own": Candidate(TINY_MODEL, str(path)),
            "b": Candidate("tf_efficientnet_lite0", "bundled"),
            "h": Candidate(TINY_MODEL, "hub"),
            "n": Candidate(TINY_MODEL, "none"),
        }
    )


def test_validate_check_names_a_missing_file_and_an_unknown_model(tmp_path):
    with pytest.raises(UserError, match=r"^backbones\.gone \(.*\): weights: .* is not a file"):
        pretrained.check_checkpoints({"gone": Candidate(TINY_MODEL, str(tmp_path / "x.pth"))})
    with pytest.raises(UserError, match=r"^backbones\.odd: unknown timm model 'no_such_net'"):
        pretrained.check_checkpoints({"odd": Candidate("no_such_net", "x.pth")})


def test_a_model_that_cannot_be_built_on_meta_is_built_on_the_cpu(monkeypatch):
    real = timm.create_model

    def picky(*args, **kwargs):
        if torch.empty(0).device.type == "meta":
            raise NotImplementedError("needs real values")
        return real(*args, **kwargs)

    monkeypatch.setattr(timm, "create_model", picky)
    assert pretrained.shapes_only(TINY_MODEL).conv_stem.weight.device.type == "cpu"


OFFLINE = [
    LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub"),
    requests.exceptions.ConnectionError("Max retries exceeded"),
    urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
    TimeoutError("timed out"),
]


@pytest.mark.parametrize("error", OFFLINE, ids=lambda e: type(e).__name__)
def test_hub_without_network_or_cache_is_one_line_naming_the_candidate(monkeypatch, error):
    def offline(*args, **kwargs):
        raise error

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(UserError) as caught:
        pretrained.hub_model(TINY_MODEL, num_classes=0, candidate="hubby")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"backbones.hubby ({TINY_MODEL}): weights: hub found no network and no cached copy "
        f"of timm's weights ({type(error).__name__}); "
    )
    assert re.search(r"connect once .* HF_HOME .* checkpoint path\.$", message)


def test_an_http_client_transport_error_is_caught_too(monkeypatch):
    transport = pretrained._transport_errors()
    assert transport, "no HTTP client under timm's download?"
    error = next(t for t in transport if not issubclass(t, OSError))

    def offline(*args, **kwargs):
        raise error("[Errno 111] Connection refused")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(UserError, match="found no network and no cached copy"):
        pretrained.hub_model(TINY_MODEL, num_classes=0, candidate="hubby")


def test_another_os_error_of_the_hub_says_what_it_was(monkeypatch):
    def unwritable(*args, **kwargs):
        raise PermissionError("[Errno 13] Permission denied: '/cache/hub'")

    monkeypatch.setattr(timm, "create_model", unwritable)
    with pytest.raises(UserError, match=r"could not get timm's weights \(\[Errno 13\]"):
        pretrained.hub_model(TINY_MODEL, num_classes=0, candidate="hubby")
