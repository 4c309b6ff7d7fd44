"""The shift fused with the per-frame conv that follows it, for training.

In a ``'blockres'`` ResNetTSM the shift feeds the first conv of the residual branch. Left to
itself, that conv keeps its own input (the shifted copy of the block input) for the gradient
of its weight, although the unshifted block input is kept anyway (by the previous block's
ReLU or by the downsample conv). :func:`shift_conv2d` keeps only the unshifted input and
redoes the shift (one copy, or in place) in backward: the numbers are those of
``conv2d(temporal_shift(x))`` and each shifted block keeps one tensor of the size of its input
less. The dispatcher (:mod:`tsmnet.shift.dispatch`) chooses it and its backend. Compiled
graphs get the backend's registered op instead (``tsmnet::shift_conv2d`` of the native
backend, the same in-place shift around the conv, in C++); tracing never sees it.
"""

from __future__ import annotations

from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from .dispatch import BACKENDS, choose
from .spec import ShiftSpec


class _ShiftConv2dFunction(torch.autograd.Function):
    """``conv2d(shift(x))`` that saves ``x`` (not the shifted copy) and the weight.

    With ``in_place`` the conv input is ``x`` itself, shifted for the conv and restored
    right after, in forward and again for the weight gradient, and the input gradient is
    shifted back where it lies. The change is made through ``x.data``: the same memory under a
    version counter of its own, so that the copies of ``x`` that autograd keeps for other
    nodes (the ReLU that produced it, the downsample conv) stay valid; they never see the
    shifted values, which are gone before any other node runs.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                spec: ShiftSpec, backend: ModuleType, stride: tuple[int, ...],
                padding: tuple[int, ...], dilation: tuple[int, ...], conv_groups: int,
                in_place: bool) -> torch.Tensor:
        conv = (weight, bias, stride, padding, dilation, conv_groups)
        out = _conv_shifted(x.data, spec, backend, in_place, lambda s: F.conv2d(s, *conv))
        ctx.save_for_backward(x, weight)  # tensors go through save_for_backward only
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        ctx.conf = (spec, backend, stride, padding, dilation, conv_groups, in_place)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        spec, backend, stride, padding, dilation, conv_groups, in_place = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]

        def conv_backward(conv_input: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
            return torch.ops.aten.convolution_backward(
                grad_out, conv_input, weight, ctx.bias_sizes, list(stride), list(padding),
                list(dilation), False, [0] * len(stride), conv_groups,
                [need_x, need_w, need_b and ctx.bias_sizes is not None])

        # Only the weight gradient reads the conv input: redo the shift for it alone.
        if need_w:
            grad_in, grad_w, grad_b = _conv_shifted(x.data, spec, backend, in_place,
                                                    conv_backward)
        else:
            grad_in, grad_w, grad_b = conv_backward(x)
        grad_x = None if grad_in is None else shift_own(grad_in, spec.reversed())
        return grad_x, grad_w, grad_b, None, None, None, None, None, None, None


def _conv_shifted(x: torch.Tensor, spec: ShiftSpec, backend: ModuleType, in_place: bool,
                  fn):
    """``fn(shift(x))``, shifting ``x`` in place and back around ``fn`` if ``in_place``."""
    if not in_place:
        return fn(backend.copy(x, spec))
    undo = backend.shift_(x, spec, True)
    try:
        return fn(x)
    finally:
        undo()


def shift_own(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """Shift a tensor that is the caller's own (a gradient just computed): in place where the
    dispatcher finds a backend for it, else into a copy. No gradient is recorded."""
    with torch.no_grad():
        plan = choose(x, spec, in_place=True)
        backend = BACKENDS[plan.backend]
        if plan.strategy == 'in_place':
            backend.shift_(x, spec, False)
            return x
        return backend.copy(x, spec)


def shift_conv2d(x: torch.Tensor, conv: nn.Conv2d, spec: ShiftSpec, backend: ModuleType,
                 in_place: bool) -> torch.Tensor:
    """``conv(shift(x))`` keeping ``x`` for backward, as chosen by the dispatcher.

    Under autocast the inputs are cast the way autocast casts a conv (to the autocast dtype)
    before the fused function runs, so the result matches the unfused pair.

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
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    if torch.compiler.is_compiling():  # the backend's registered op (the dispatcher's choice)
        return backend.traced_conv2d(x, weight, bias, conv, spec)
    return _ShiftConv2dFunction.apply(x, weight, bias, spec, backend, conv.stride,
                                      conv.padding, conv.dilation, conv.groups, in_place)
