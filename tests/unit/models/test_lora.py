import copy

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import TINY_MODEL
from transferlab import io
from transferlab.errors import UserError
from transferlab.models import backbone, lora
from transferlab.params import Candidate

TARGETS = ("conv_pw", "conv_pwl", "conv_head")


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return backbone.create_backbone(TINY_MODEL, "none", num_classes=3).eval()


def randomised(model: nn.Module, seed: int = 1) -> nn.Module:
    """Non-zero B weights, as after training: the adapters change the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, lora.LoraConv2d):
                weight = layer.lora_B.weight
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.1)
    return model


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_targets_match_name_suffixes_of_1x1_convolutions_only():
    model = tiny()
    names = lora.add_adapters(model, TARGETS, rank=2, alpha=4)
    assert names and "conv_head" in names
    assert all(name.rpartition(".")[2] in TARGETS for name in names)
    pointwise = [n for n, m in tiny().named_modules() if lora.is_pointwise(m)]
    assert set(names) == {n for n in pointwise if n.rpartition(".")[2] in TARGETS}
    assert lora.targeted(tiny(), ["se.conv_reduce"], "tiny") == [  # a longer suffix
        "blocks.3.0.se.conv_reduce",
        "blocks.4.0.se.conv_reduce",
    ]
    with pytest.raises(UserError, match=r"'conv_dw' matches no 1x1 convolution of tiny; "):
        lora.targeted(tiny(), ["conv_dw"], "tiny")  # depthwise 3x3: never adapted


def test_zero_initialised_adapters_predict_exactly_as_the_backbone():
    plain = tiny()
    adapted = copy.deepcopy(plain)
    lora.add_adapters(adapted, TARGETS, rank=4, alpha=8)
    with torch.no_grad():
        assert torch.equal(adapted(images()), plain(images()))
        assert not torch.equal(randomised(adapted)(images()), plain(images()))


def test_merged_adapters_predict_as_unmerged_ones_and_leave_a_plain_model():
    adapted = tiny()
    lora.add_adapters(adapted, TARGETS, rank=4, alpha=8)
    randomised(adapted)
    with torch.no_grad():
        before = adapted(images())
        lora.merge_adapters(adapted)
        after = adapted(images())
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, lora.LoraConv2d) for m in adapted.modules())
    assert adapted.state_dict().keys() == tiny().state_dict().keys()


def test_the_saved_adapter_reloads_onto_a_fresh_backbone(tmp_path):
    adapted = tiny()
    lora.add_adapters(adapted, TARGETS, rank=4, alpha=8)
    for name, p in adapted.named_parameters():  # what the lora strategy trains
        p.requires_grad_(".lora_" in name or name.startswith("classifier."))
    randomised(adapted)
    with torch.no_grad():
        adapted.classifier.weight.mul_(2)
    arrays = lora.adapter_arrays(adapted)
    assert int(arrays[lora.RANK]) == 4 and float(arrays[lora.ALPHA]) == 8
    io.save_arrays(tmp_path / io.ADAPTER_FILE, **arrays)
    fresh = tiny()
    lora.load_adapter(fresh, io.load_arrays(tmp_path / io.ADAPTER_FILE))
    with torch.no_grad():
        assert torch.equal(fresh(images()), adapted(images()))
    with pytest.raises(UserError, match="does not fit the model"):
        lora.load_adapter(tiny(), {**arrays, "classifier.weight": np.zeros((5, 2), np.float32)})


def test_the_adapter_matches_peft_on_a_layer():
    """Our LoraConv2d against HuggingFace peft's LoRA for Conv2d (the dev extra's oracle):
    the same seed draws the same A and B, the same input gives the same output, and merging
    adds the same weight."""
    import peft

    def layer() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(6, 10, 1, bias=False))

    torch.manual_seed(3)
    ours = lora.LoraConv2d(layer()[0], rank=4, alpha=8)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["0"])
    torch.manual_seed(3)
    theirs = peft.get_peft_model(layer(), config).base_model.model[0]
    assert torch.equal(ours.lora_A.weight, theirs.lora_A["default"].weight)  # same init
    assert torch.equal(ours.lora_B.weight, theirs.lora_B["default"].weight)  # zeros
    assert ours.scaling == theirs.scaling["default"] == 2.0
    with torch.no_grad():
        b = torch.randn(theirs.lora_B["default"].weight.shape)
        ours.lora_B.weight.copy_(b)
        theirs.lora_B["default"].weight.copy_(b)
        x = torch.randn(2, 6, 5, 5)
        torch.testing.assert_close(ours(x), theirs(x))
        torch.testing.assert_close(ours.delta_weight(), theirs.get_delta_weight("default"))
        theirs.merge()
        torch.testing.assert_close(ours.merged().weight, theirs.base_layer.weight)


def test_a_target_no_candidate_has_is_named_with_the_models_1x1_convolutions():
    candidates = {"tiny": Candidate(TINY_MODEL, "none")}
    lora.check_targets(candidates, TARGETS)  # built on the meta device: no weights needed
    with pytest.raises(UserError) as caught:
        lora.check_targets(candidates, ["conv_pw", "conv_pwll"])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"finetune.lora.targets: 'conv_pwll' matches no 1x1 convolution of backbones.tiny "
        f"({TINY_MODEL}); its 1x1 convolutions include blocks.1.0.conv_pwl, blocks.3.0.conv_pw,"
    )
    assert message.endswith(
        "a target is the end of such a name (here one of: conv_pwl, conv_pw, conv_reduce, "
        "conv_expand, conv_head)."
    )
    with pytest.raises(UserError, match=r"^backbones\.odd: unknown timm model 'no_such_net'"):
        lora.check_targets({"odd": Candidate("no_such_net", "none")}, TARGETS)
