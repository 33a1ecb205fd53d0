"""Depthwise convolutions' weight gradient on CPU, taken where oneDNN computes it fast.

oneDNN (torch's CPU convolutions) is slow at a depthwise convolution's weight gradient when
the zero padding is about as wide as the feature map: at 48 px, EfficientNet-Lite's last
stages see 3x3 and 2x2 maps through 5x5 kernels padded by 2. Measured on the 2-core
development CPU (tf_efficientnet_lite1, 48 px, batch 64): those gradients took 321 ms of a
0.54 s training step; the same gradients from the input padded beforehand, convolved
without padding, 52 ms (docs/benchmarks.md). The value is the same sum; only the order of
its float additions may differ. The forward pass and the input's gradient stay torch's own.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

aten = torch.ops.aten


class _PaddedDepthwise(torch.autograd.Function):
    """conv2d(x, weight, groups=channels) whose weight gradient convolves the input padded
    beforehand: the same function, the same forward and input gradient as F.conv2d."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conv = (stride, padding, dilation)
        return F.conv2d(x, weight, None, stride, padding, dilation, weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, (pad_h, pad_w), dilation = ctx.conv
        groups = weight.shape[0]
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = aten.convolution_backward(
                grad, x, weight, None, stride, [pad_h, pad_w], dilation,
                False, [0, 0], groups, [True, False, False],
            )[0]  # fmt: skip
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h))  # keeps x's memory format
            grad_weight = aten.convolution_backward(
                grad, padded, weight, None, stride, [0, 0], dilation,
                False, [0, 0], groups, [False, True, False],
            )[1]  # fmt: skip
        return grad_x, grad_weight, None, None, None


def _forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return _PaddedDepthwise.apply(x, conv.weight, conv.stride, conv.padding, conv.dilation)


def padded_depthwise(conv: nn.Module) -> bool:
    """Whether `conv` is a depthwise nn.Conv2d with zero padding and no bias: the kind whose
    weight gradient route_weight_gradients changes."""
    return (
        type(conv) is nn.Conv2d  # timm's Conv2dSame pads in its forward: padding 0 already
        and conv.groups > 1
        and conv.groups == conv.in_channels == conv.out_channels
        and conv.bias is None
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and any(conv.padding)
    )


def route_weight_gradients(model: nn.Module) -> int:
    """Route every padded depthwise convolution of `model` through _PaddedDepthwise (for
    training on CPU); its parameters and state_dict stay as they were. Returns how many."""
    convs = [m for m in model.modules() if padded_depthwise(m)]
    for conv in convs:
        conv.forward = functools.partial(_forward, conv)
    return len(convs)
