"""The eager strategies under autograd: the copying shift and the fused shift + conv.

Both are ``torch.autograd.Function`` s in the modern form (``forward`` without ``ctx``,
``setup_context``), so ``torch.func`` can transform them: the copy has a ``vmap`` rule and a
``jvp``, and both backwards are themselves differentiable (double backward,
``create_graph=True``): with grad mode on in backward (what ``create_graph`` turns on) the
backward is made of differentiable ops; otherwise it takes the fast kernels.

The fused function (``conv2d(shift(x))``) keeps only ``x`` and the weight for backward and
redoes the shift (a copy, or in place and back through
:class:`tsmnet.shift.in_place.shifted_in_place`) for the weight gradient. In a ``'blockres'``
ResNetTSM the shift feeds the first conv of the residual branch, whose input would otherwise
be kept as a shifted copy of the block input, although the unshifted block input is kept
anyway (by the previous block's ReLU or by the downsample conv): each shifted block keeps one
tensor of the size of its input less.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

from .._torch_compat import forward_ad_active as _forward_ad
from .dispatch import BACKENDS, Plan, choose, functorch_active
from .in_place import shift_owned, shifted_in_place
from .spec import ShiftSpec, dense_frames


class ShiftFunction(torch.autograd.Function):
    """The eager copying shift of ``backend`` under autograd: the gradient (and the tangent)
    is the opposite (the same) shift, chosen again for its own layout; nothing is saved."""

    @staticmethod
    def forward(x: torch.Tensor, spec: ShiftSpec,  # type: ignore[override]
                backend: ModuleType) -> torch.Tensor:
        return backend.copy(x, spec)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.spec = inputs[1]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        return shift(grad, ctx.spec.reversed()), None, None

    @staticmethod
    def jvp(ctx: Any, x_t: torch.Tensor, *_: Any) -> torch.Tensor:
        return shift(x_t, ctx.spec)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], x: torch.Tensor, spec: ShiftSpec,
             backend: ModuleType) -> tuple[torch.Tensor, int]:
        # The vmapped dim joins the frames: [B, N * T, ...] is [B * N * T, ...], whose clips
        # are the clips of each batch element, in order.
        x = x.movedim(in_dims[0], 0)
        out = ShiftFunction.apply(dense_frames(x.reshape(-1, *x.shape[2:])), spec, backend)
        return out.view(x.shape), 0


def shift(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The copying shift of ``x`` (any strides) by the dispatcher's choice, differentiable."""
    x = dense_frames(x)
    return shift_copy(x, spec, choose(x, spec))


def shift_copy(x: torch.Tensor, spec: ShiftSpec, plan: Plan) -> torch.Tensor:
    """The copying shift of ``x`` on ``plan``'s backend, differentiable."""
    backend = BACKENDS[plan.backend]
    if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
        return backend.traced(x, spec)
    if plan.backend == 'functional':
        return backend.shift(x, spec)
    if functorch_active() or (plan.backend != 'native' and (
            (torch.is_grad_enabled() and x.requires_grad) or _forward_ad())):
        return ShiftFunction.apply(x, spec, backend)  # vmap, jvp and grad rules
    return backend.copy(x, spec)  # the native op differentiates itself, in C++


class ShiftConv2dFunction(torch.autograd.Function):
    """``conv2d(shift(x))`` that saves ``x`` (not the shifted copy) and the weight.

    With ``in_place`` the conv input is ``x`` itself, shifted for the conv and restored right
    after (:class:`~tsmnet.shift.in_place.shifted_in_place`), in forward and again for the
    weight gradient, and the input gradient is shifted back where it lies.
    """

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor,  # type: ignore[override]
                bias: torch.Tensor | None, spec: ShiftSpec, backend: ModuleType,
                stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                groups: int, in_place: bool) -> torch.Tensor:
        if not in_place:
            return F.conv2d(backend.copy(x, spec), weight, bias, stride, padding, dilation,
                            groups)
        with shifted_in_place(x, spec, backend) as shifted:
            return F.conv2d(shifted, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        x, weight, bias, *ctx.conf = inputs
        ctx.save_for_backward(x, weight)  # tensors go through save_for_backward only
        ctx.bias_sizes = None if bias is None else list(bias.shape)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        spec, backend, stride, padding, dilation, groups, in_place = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        mask = [need_x, need_w, need_b and ctx.bias_sizes is not None]

        def conv_backward(conv_input: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
            return torch.ops.aten.convolution_backward(
                grad_out, conv_input, weight, ctx.bias_sizes, list(stride), list(padding),
                list(dilation), False, [0] * len(stride), groups, mask)

        if torch.is_grad_enabled():  # create_graph=True: differentiable ops only
            grad_in, grad_w, grad_b = conv_backward(shift(x, spec))
            grad_x = None if grad_in is None else shift(grad_in, spec.reversed())
        else:
            # Only the weight gradient reads the conv input: redo the shift for it alone.
            if not need_w:
                grad_in, grad_w, grad_b = conv_backward(x)
            elif in_place:
                with shifted_in_place(x, spec, backend) as shifted:
                    grad_in, grad_w, grad_b = conv_backward(shifted)
            else:
                grad_in, grad_w, grad_b = conv_backward(backend.copy(x, spec))
            grad_x = None if grad_in is None else shift_owned(dense_frames(grad_in),
                                                              spec.reversed())
        return grad_x, grad_w, grad_b, None, None, None, None, None, None, None
