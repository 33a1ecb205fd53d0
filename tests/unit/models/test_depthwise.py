import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import TINY_MODEL
from transferlab.models import backbone, depthwise

# (channels, kernel, stride, padding, side): the slow case (padding as wide as the map), the
# ordinary one, a stride, an asymmetric padding
SHAPES = [(24, 5, 1, 2, 3), (16, 3, 1, 1, 12), (8, 5, 2, 2, 7), (8, 3, 1, (1, 0), 5)]


def conv_and_input(channels, kernel, stride, padding, side, seed=0):
    torch.manual_seed(seed)
    conv = nn.Conv2d(channels, channels, kernel, stride, padding, groups=channels, bias=False)
    x = torch.randn(4, channels, side, side).to(memory_format=torch.channels_last)
    return conv.to(memory_format=torch.channels_last), x


@pytest.mark.parametrize("shape", SHAPES)
def test_routed_convolution_gives_torchs_forward_bits_and_its_gradients(shape):
    conv, x = conv_and_input(*shape)
    native_x = x.clone().requires_grad_()
    native = conv(native_x)
    native.square().sum().backward()
    native_grads = (native_x.grad, conv.weight.grad.clone())
    conv.weight.grad = None

    assert depthwise.route_weight_gradients(conv) == 1
    routed_x = x.clone().requires_grad_()
    routed = conv(routed_x)
    routed.square().sum().backward()

    assert torch.equal(routed, native)  # the forward is F.conv2d's own
    assert torch.equal(routed_x.grad, native_grads[0])  # so is the input's gradient
    torch.testing.assert_close(conv.weight.grad, native_grads[1], rtol=1e-5, atol=1e-5)
    # against float64: the weight gradient is the same sum, not a different function
    x64, w64 = x.double(), conv.weight.detach().double().requires_grad_()
    out64 = F.conv2d(x64, w64, None, conv.stride, conv.padding, 1, conv.groups)
    out64.square().sum().backward()
    torch.testing.assert_close(conv.weight.grad.double(), w64.grad, rtol=1e-4, atol=1e-4)


def test_frozen_weights_get_no_gradient_and_inputs_without_grad_need_none():
    conv, x = conv_and_input(*SHAPES[0])
    depthwise.route_weight_gradients(conv)
    conv.weight.requires_grad_(False)
    inputs = x.clone().requires_grad_()
    conv(inputs).sum().backward()
    assert conv.weight.grad is None and inputs.grad is not None
    conv.weight.requires_grad_(True)
    conv(x).sum().backward()  # the input needs no gradient: only the weight's is computed
    assert conv.weight.grad is not None


def test_only_padded_depthwise_convolutions_without_bias_are_routed():
    assert depthwise.padded_depthwise(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False))
    assert not depthwise.padded_depthwise(nn.Conv2d(8, 8, 3, padding=1, groups=8))  # bias
    assert not depthwise.padded_depthwise(nn.Conv2d(8, 8, 3, padding=0, groups=8, bias=False))
    assert not depthwise.padded_depthwise(nn.Conv2d(8, 16, 3, padding=1, groups=8, bias=False))
    assert not depthwise.padded_depthwise(nn.Conv2d(8, 8, 3, padding=1, bias=False))
    assert not depthwise.padded_depthwise(
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False, padding_mode="reflect")
    )


def test_a_routed_timm_model_keeps_its_parameters_state_and_outputs():
    torch.manual_seed(0)
    model = backbone.create_backbone(TINY_MODEL, "none", num_classes=3).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [id(p) for p in model.parameters()]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    routed = depthwise.route_weight_gradients(model)
    assert routed == sum(depthwise.padded_depthwise(m) for m in model.modules()) > 0
    assert [id(p) for p in model.parameters()] == params
    assert model.state_dict().keys() == before.keys()
    with torch.no_grad():
        assert torch.equal(model(x), expected)
