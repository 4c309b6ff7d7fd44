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

from .inplace_shift import can_shift_in_place, shift_in_place_, shifted_in_place
from .ops import _Group, _groups, _reversed, _shift_copy

# Conv classes whose forward is exactly nn.Conv2d's: mmcv's wrapper (what ConvModule builds for
# conv_cfg=dict(type='Conv')) differs only for empty inputs on torch < 1.4.
_PLAIN_CONVS: tuple[type[nn.Module], ...] = (nn.Conv2d,)
try:
    from mmcv.cnn.bricks.wrappers import Conv2d as _MMCVConv2d

    _PLAIN_CONVS += (_MMCVConv2d,)
except ImportError:  # mmcv is optional for this module
    pass


class _ShiftConv2dFunction(torch.autograd.Function):
    """``conv2d(shift(x))`` that saves ``x`` (not the shifted copy) and the weight.

    With ``in_place`` the conv input is ``x`` itself, shifted for the conv and restored
    right after (:func:`tsmnet.inplace_shift.shifted_in_place`), in forward and again for
    the weight gradient, and the input gradient is shifted back where it lies. The change is
    made through ``x.data``: the same memory under a version counter of its own, so that the
    copies of ``x`` that autograd keeps for other nodes (the ReLU that produced it, the
    downsample conv) stay valid; they never see the shifted values, which are gone before
    any other node runs.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                num_segments: int, groups: tuple[_Group, ...], stride: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...], conv_groups: int,
                in_place: bool) -> torch.Tensor:
        if in_place:
            with shifted_in_place(x.data, num_segments, groups) as shifted:
                out = F.conv2d(shifted, weight, bias, stride, padding, dilation, conv_groups)
        else:
            out = F.conv2d(_shift_copy(x, num_segments, groups), weight, bias, stride,
                           padding, dilation, conv_groups)
        ctx.save_for_backward(x, weight)  # tensors go through save_for_backward only
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        ctx.conf = (num_segments, groups, stride, padding, dilation, conv_groups, in_place)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        num_segments, groups, stride, padding, dilation, conv_groups, in_place = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]

        def conv_backward(conv_input: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
            return torch.ops.aten.convolution_backward(
                grad_out, conv_input, weight, ctx.bias_sizes, list(stride), list(padding),
                list(dilation), False, [0] * len(stride), conv_groups,
                [need_x, need_w, need_b and ctx.bias_sizes is not None])

        # Only the weight gradient reads the conv input: redo the shift for it alone.
        if not need_w:
            grad_in, grad_w, grad_b = conv_backward(x)
        elif in_place:
            with shifted_in_place(x.data, num_segments, groups) as shifted:
                grad_in, grad_w, grad_b = conv_backward(shifted)
        else:
            grad_in, grad_w, grad_b = conv_backward(_shift_copy(x, num_segments, groups))
        grad_x = None
        if need_x:
            back = _reversed(groups)
            grad_x = (shift_in_place_(grad_in, num_segments, back) if in_place
                      else _shift_copy(grad_in, num_segments, back))
        return grad_x, grad_w, grad_b, None, None, None, None, None, None, None


def can_fuse(net: nn.Module) -> bool:
    """Whether :func:`shift_conv2d` computes ``net(temporal_shift(x))`` for this ``net``.

    True for a plain ``nn.Conv2d`` or mmcv's ``Conv2d`` wrapper (not another subclass, which
    may override ``forward``) with zero padding given as numbers.
    """
    return (type(net) in _PLAIN_CONVS and net.padding_mode == 'zeros'
            and not isinstance(net.padding, str))


def shift_conv2d(x: torch.Tensor, conv: nn.Conv2d, num_segments: int, shift_div: int = 8,
                 mode: str = 'bidirectional', in_place: bool = False) -> torch.Tensor:
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
        in_place: Shift ``x`` itself for the conv and restore it, instead of copying it
            (see :class:`_ShiftConv2dFunction`), where
            :func:`tsmnet.inplace_shift.can_shift_in_place` allows. Only for an ``x`` that
            nothing reads while the conv runs, as inside a ResNet block. Defaults to False.

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
    in_place = in_place and can_shift_in_place(x, autograd=True)
    return _ShiftConv2dFunction.apply(x, weight, bias, num_segments, groups, conv.stride,
                                      conv.padding, conv.dilation, conv.groups, in_place)
