"""The shift fused with the per-frame conv that follows it, for training.

In a ``'blockres'`` ResNetTSM the shift feeds the first conv of the residual branch. Left to
itself, that conv keeps its own input (the shifted copy of the block input) for the gradient
of its weight, although the unshifted block input is kept anyway (by the previous block's
ReLU or by the downsample conv). :func:`shift_conv2d` keeps only the unshifted input and
redoes the shift (one copy) in backward: the numbers are those of ``conv2d(temporal_shift(x))``
and each shifted block keeps one tensor of the size of its input less.

Eager autograd only: :class:`tsmnet.TemporalShift` uses it when its ``net`` is a plain
``nn.Conv2d`` and a gradient is wanted, and takes the plain shift then ``net`` under tracing,
export and ``torch.compile`` (see :mod:`tsmnet.ops`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ops import _Group, _groups, _reversed, _shift_copy

# Conv classes whose forward is exactly nn.Conv2d's: mmcv's wrapper (what ConvModule builds for
# conv_cfg=dict(type='Conv')) differs only for empty inputs on torch < 1.4.
_PLAIN_CONVS: tuple[type[nn.Module], ...] = (nn.Conv2d,)
try:
    from mmcv.cnn.bricks.wrappers import Conv2d as _MMCVConv2d

    _PLAIN_CONVS += (_MMCVConv2d,)
except ImportError:  # mmcv is optional for this module
    pass


def _shift(x: torch.Tensor, num_segments: int, groups: tuple[_Group, ...]) -> torch.Tensor:
    """:func:`tsmnet.temporal_shift` of ``[N * T, C, H, W]`` frames, with no checks."""
    nt, c, h, w = x.shape
    return _shift_copy(x.reshape(nt // num_segments, num_segments, c, h, w), groups).reshape(
        nt, c, h, w)


class _ShiftConv2dFunction(torch.autograd.Function):
    """``conv2d(shift(x))`` that saves ``x`` (not the shifted copy) and the weight."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                num_segments: int, groups: tuple[_Group, ...], stride: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...],
                conv_groups: int) -> torch.Tensor:
        out = F.conv2d(_shift(x, num_segments, groups), weight, bias, stride, padding, dilation,
                       conv_groups)
        ctx.save_for_backward(x, weight)  # tensors go through save_for_backward only
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        ctx.conf = (num_segments, groups, stride, padding, dilation, conv_groups)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        num_segments, groups, stride, padding, dilation, conv_groups = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        # Only the weight gradient reads the conv input: redo the shift for it alone.
        conv_input = _shift(x, num_segments, groups) if need_w else x
        grad_in, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad_out, conv_input, weight, ctx.bias_sizes, list(stride), list(padding),
            list(dilation), False, [0] * len(stride), conv_groups,
            [need_x, need_w, need_b and ctx.bias_sizes is not None])
        grad_x = _shift(grad_in, num_segments, _reversed(groups)) if need_x else None
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


def can_fuse(net: nn.Module) -> bool:
    """Whether :func:`shift_conv2d` computes ``net(temporal_shift(x))`` for this ``net``.

    True for a plain ``nn.Conv2d`` or mmcv's ``Conv2d`` wrapper (not another subclass, which
    may override ``forward``) with zero padding given as numbers.
    """
    return (type(net) in _PLAIN_CONVS and net.padding_mode == 'zeros'
            and not isinstance(net.padding, str))


def shift_conv2d(x: torch.Tensor, conv: nn.Conv2d, num_segments: int, shift_div: int = 8,
                 mode: str = 'bidirectional') -> torch.Tensor:
    """``conv(temporal_shift(x, num_segments, shift_div, mode))`` keeping ``x`` for backward.

    Under autocast the inputs are cast the way autocast casts a conv (to the autocast dtype)
    before the fused function runs, so the result matches the unfused pair.

    Args:
        x: Frames ``[N * T, C, H, W]``, validated by the caller (see
            :func:`tsmnet.temporal_shift`), any memory format.
        conv: A plain ``nn.Conv2d`` (:func:`can_fuse`).
        num_segments: Frames per clip ``T``.
        shift_div: The fold is ``C // shift_div`` channels. Defaults to 8.
        mode: ``'bidirectional'`` (default) or ``'causal'``.

    Returns:
        ``[N * T, C_out, H_out, W_out]``, the output of ``conv``.
    """
    weight, bias = conv.weight, conv.bias
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    groups = _groups(x.shape[1] // shift_div, mode)
    return _ShiftConv2dFunction.apply(x, weight, bias, num_segments, groups, conv.stride,
                                      conv.padding, conv.dilation, conv.groups)
