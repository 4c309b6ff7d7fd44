"""The shift fused with the per-frame conv that follows it, for training.

:func:`shift_conv2d` computes ``conv(shift(x))`` keeping only ``x`` (not a shifted copy) and
the weight for backward: eagerly through
:class:`tsmnet.shift.autograd.ShiftConv2dFunction`, and under ``torch.compile`` as the
registered op ``tsmnet::shift_conv2d`` (and ``tsmnet::shift_conv2d_backward``): ``x`` shifted
in place around the conv by whichever backend shifts it in place here
(:class:`tsmnet.shift.in_place.shifted_in_place`, the same primitive as eager), in the layout
inductor gives it. The dispatcher (:mod:`tsmnet.shift.dispatch`) chooses it for a plain conv
only (:func:`tsmnet.shift.dispatch.fuse_refusal`); tracing never sees it.

The ops state their output layout exactly, for the fake tensors inductor plans with: the conv
runs with the weight in the memory format of the frames (``x.suggest_memory_format()``), the
output and the input gradient come in that format, the weight gradient in the weight's.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import nn

from .._torch_compat import apply_positional, inductor_fallback_with_conv_layout
from . import library
from .autograd import ShiftConv2dFunction
from .dispatch import BACKENDS, choose, in_place_backend
from .in_place import shift_owned, shifted_in_place
from .spec import ShiftSpec, dense_frames

aten = torch.ops.aten


def _autocast(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``t`` as autocast casts the inputs of a conv: floating point other than float64 to
    the autocast dtype; float64 and everything else as it is."""
    if t is None or not t.is_floating_point() or t.dtype == torch.float64:
        return t
    return t.to(dtype)


def shift_conv2d(x: torch.Tensor, conv: nn.Conv2d, spec: ShiftSpec, backend: ModuleType,
                 in_place: bool) -> torch.Tensor:
    """``conv(shift(x))`` keeping ``x`` for backward, as chosen by the dispatcher.

    Under autocast the inputs are cast as autocast casts a conv's (float64 left alone), so
    the result matches the unfused pair.

    Args:
        x: Frames ``[N * T, C, H, W]``, already checked, any memory format the backend takes.
        conv: A plain ``nn.Conv2d`` (:func:`tsmnet.shift.dispatch.can_fuse`).
        spec: The shift.
        backend: The backend module that shifts (its ``copy``, and ``shift_`` if
            ``in_place``).
        in_place: Shift ``x`` itself for the conv and restore it, instead of copying it.

    Returns:
        ``[N * T, C_out, H_out, W_out]``, the output of ``conv``.
    """
    weight, bias = conv.weight, conv.bias
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        x, weight, bias = _autocast(x, dtype), _autocast(weight, dtype), _autocast(bias, dtype)
    if torch.compiler.is_compiling():  # the registered op (the dispatcher's choice)
        _lay_out_like_convs()
        return torch.ops.tsmnet.shift_conv2d(
            x, weight, bias, list(conv.stride), list(conv.padding), list(conv.dilation),
            conv.groups, *library.op_args(spec))
    return apply_positional(ShiftConv2dFunction, x, weight, bias, spec, backend, conv.stride,
                            conv.padding, conv.dilation, conv.groups, in_place)


# --------------------------------------------------------------------------- registered ops
def _conv_layout(x: torch.Tensor, weight: torch.Tensor
                 ) -> tuple[torch.memory_format, torch.Tensor]:
    """The memory format of the frames, and the weight in it (as the conv wants it)."""
    fmt = _memory_format(x)
    return fmt, weight.contiguous(memory_format=fmt)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """Channels-last for channels-last frames that are not also contiguous, else contiguous:
    from the strides alone, so that a fake tensor gets the real one's answer."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _on_shifted(x: torch.Tensor, spec: ShiftSpec, fn: Any) -> Any:
    """``fn(shift(x))``: ``x`` shifted in place and restored where a backend can, else a
    shifted copy (a compiler may hand over any strides)."""
    backend = in_place_backend(x)
    if backend is None:
        return fn(BACKENDS[choose(dense_frames(x), spec).backend].copy(dense_frames(x), spec))
    with shifted_in_place(x, spec, backend) as shifted:
        return fn(shifted)


@torch.library.custom_op(f'{library.NAMESPACE}::shift_conv2d', mutates_args=())
def shift_conv2d_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    stride: list[int], padding: list[int], dilation: list[int], groups: int,
                    t: int, fold: int, dirs: list[int]) -> torch.Tensor:
    """``conv2d(shift(x))`` for compiled graphs, the way eager ResNetTSM runs it: ``x``
    shifted in place for the conv and restored (its schema shows it as read only: it comes
    back bit for bit, also when the conv raises)."""
    fmt, w = _conv_layout(x, weight)
    out = _on_shifted(x, ShiftSpec(t, fold, tuple(dirs)), lambda s: F.conv2d(
        s, w, bias, stride, padding, dilation, groups))
    return out.contiguous(memory_format=fmt)


@shift_conv2d_op.register_fake
def _(x, weight, bias, stride, padding, dilation, groups, t, fold, dirs):
    fmt, w = _conv_layout(x, weight)
    return aten.convolution(x, w, bias, stride, padding, dilation, False, [0, 0],
                            groups).contiguous(memory_format=fmt)


@torch.library.custom_op(f'{library.NAMESPACE}::shift_conv2d_backward', mutates_args=())
def shift_conv2d_backward_op(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                             stride: list[int], padding: list[int], dilation: list[int],
                             groups: int, t: int, fold: int, dirs: list[int]
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of ``shift_conv2d`` for ``x`` and the weight: the weight's from the conv
    of the shifted ``x`` (shifted in place again and restored), ``x``'s shifted back where
    the conv backward wrote it. Nothing but ``x`` and the weight was kept."""
    spec = ShiftSpec(t, fold, tuple(dirs))
    fmt, w = _conv_layout(x, weight)
    grad_in, grad_w, _ = _on_shifted(x, spec, lambda s: aten.convolution_backward(
        grad_out, s, w, None, stride, padding, dilation, False, [0, 0], groups,
        [True, True, False]))
    grad_x = shift_owned(dense_frames(grad_in), spec.reversed())
    return (grad_x.contiguous(memory_format=fmt),
            grad_w.contiguous(memory_format=_memory_format(weight)))


@shift_conv2d_backward_op.register_fake
def _(grad_out, x, weight, stride, padding, dilation, groups, t, fold, dirs):
    fmt, w = _conv_layout(x, weight)
    grad_in, grad_w, _ = aten.convolution_backward(
        grad_out, x, w, None, stride, padding, dilation, False, [0, 0], groups,
        [True, True, False])
    return (grad_in.contiguous(memory_format=fmt),
            grad_w.contiguous(memory_format=_memory_format(weight)))


def _setup(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    x, weight, bias, *ctx.conf = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None


def _backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    x, weight = ctx.saved_tensors
    grad_x, grad_w = shift_conv2d_backward_op(grad, x, weight, *ctx.conf)
    grad_b = grad.sum((0, 2, 3)) if ctx.has_bias else None
    return (grad_x, grad_w, grad_b) + (None,) * len(ctx.conf)


torch.library.register_autograd(f'{library.NAMESPACE}::shift_conv2d', _backward,
                                setup_context=_setup)


@torch.compiler.assume_constant_result  # runs once, when the graph is traced
def _lay_out_like_convs() -> bool:
    """Have inductor lay out the tensors of the ``shift_conv2d`` ops as those of its own convs.

    Left to its defaults, inductor converts the inputs of an op it does not know to the
    strides they had when traced (contiguous), on each call: the frames, which it keeps
    channels-last next to its CPU convs, and back; and the weight stays contiguous, which
    mkldnn then converts on each call (about 5 ms for 512x512x3x3 on 2 threads, where
    inductor's fused loop is cheap). This registers the ops' fallback lowering with a layout
    rule that asks for channels-last tensors wherever inductor chose that layout for the
    graph's convs, as it does on the CPU. It uses inductor's lowering registry, which is not
    public: where that fails the ops keep the default rule (slower, same numbers).
    """
    try:
        inductor_fallback_with_conv_layout((torch.ops.tsmnet.shift_conv2d.default,
                                            torch.ops.tsmnet.shift_conv2d_backward.default))
    except Exception as err:  # another torch: the default layout rule
        print_log(f'tsmnet: inductor keeps its default layout for the shift_conv2d ops '
                  f'({type(err).__name__}: {err})', logger='current', level=logging.DEBUG)
    return True
