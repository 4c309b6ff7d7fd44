"""The public shift: :func:`temporal_shift`, its plain reference, and the entry of modules.

TSM (Lin, Gan & Han, ICCV 2019, https://arxiv.org/abs/1811.08383) moves a fraction of the
channels of every frame to its neighbouring frames, so that a per-frame 2D network mixes
information across time at no extra FLOPs. The op costs one copy of its input; modules may
shift in place or fuse the shift with their conv. Which code runs is chosen by
:func:`tsmnet.shift.dispatch.choose` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import torch
from torch import nn

from .dispatch import BACKENDS, Plan, choose
from .fused import shift_conv2d
from .spec import ShiftMode, ShiftSpec, dense_frames, spec_for


class _ShiftFunction(torch.autograd.Function):
    """The eager copying shift under autograd: the gradient is the opposite shift (chosen
    again for the gradient's own layout); nothing is saved."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, spec: ShiftSpec,  # type: ignore[override]
                backend: ModuleType) -> torch.Tensor:
        ctx.spec = spec
        return backend.copy(x, spec)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        back = ctx.spec.reversed()
        grad = dense_frames(grad)
        return shift_copy(grad, back, choose(grad, back)), None, None


def shift_copy(x: torch.Tensor, spec: ShiftSpec, plan: Plan) -> torch.Tensor:
    """The copying shift of ``x`` on ``plan``'s backend, differentiable."""
    backend = BACKENDS[plan.backend]
    if torch.compiler.is_compiling() and not torch.compiler.is_exporting():
        return backend.traced(x, spec)
    if plan.backend == 'functional':
        return backend.shift(x, spec)
    if torch.is_grad_enabled() and x.requires_grad:
        return _ShiftFunction.apply(x, spec, backend)
    return backend.copy(x, spec)


def temporal_shift(
    x: torch.Tensor,
    num_segments: int,
    shift_div: int = 8,
    mode: ShiftMode = 'bidirectional',
) -> torch.Tensor:
    """Shift a fold of channels along time.

    With ``fold = C // shift_div``: in ``'bidirectional'`` mode channels ``[0, fold)`` of frame
    ``t`` come from frame ``t + 1`` and channels ``[fold, 2 * fold)`` from frame ``t - 1``; in
    ``'causal'`` mode (the paper's online TSM) channels ``[0, fold)`` come from frame ``t - 1``
    only. Frames outside the clip read as exact zeros; the other channels are unchanged.
    The backend is chosen by :mod:`tsmnet.shift.dispatch` (``TSMNET_SHIFT_BACKEND``,
    :func:`tsmnet.shift.use_backend`); every backend gives the same numbers.

    Args:
        x: Frames ``[N * T, C, H, W]``, the ``T = num_segments`` frames of a clip adjacent.
            Any memory format; the result has the same one.
        num_segments: Frames per clip ``T``.
        shift_div: The fold is ``C // shift_div`` channels. Defaults to 8.
        mode: ``'bidirectional'`` (default) or ``'causal'``.

    Returns:
        The shifted frames, ``[N * T, C, H, W]``, a new tensor.
    """
    spec = spec_for(x, num_segments, shift_div, mode)
    return shift_copy(x, spec, choose(x, spec))


def shift_then(net: nn.Module, x: torch.Tensor, num_segments: int, shift_div: int = 8,
               mode: ShiftMode = 'bidirectional', in_place: bool = False) -> torch.Tensor:
    """``net(temporal_shift(x, ...))``, the way the dispatcher finds cheapest: a copy, the
    input shifted in place and back around ``net``, or shift and conv fused.

    Args:
        net: The per-frame module that runs on the shifted frames.
        x: Frames ``[N * T, C, H, W]``.
        num_segments: Frames per clip ``T``.
        shift_div: The fold is ``C // shift_div`` channels. Defaults to 8.
        mode: ``'bidirectional'`` (default) or ``'causal'``.
        in_place: The caller allows shifting ``x`` itself while ``net`` runs: nothing else
            reads it meanwhile (as inside a ResNet block). Hooks, autograd and tracing
            still make it copy. Defaults to False.

    Returns:
        The output of ``net``.
    """
    spec = spec_for(x, num_segments, shift_div, mode)
    plan = choose(x, spec, in_place=in_place, net=net)
    if plan.strategy == 'copy':
        return net(shift_copy(x, spec, plan))
    backend = BACKENDS[plan.backend]
    if plan.strategy in ('fused', 'fused_in_place'):
        return shift_conv2d(x, net, spec, backend, plan.strategy == 'fused_in_place')
    undo = backend.shift_(x, spec, True)
    try:
        return net(x)
    finally:
        undo()


@contextmanager
def shifted_in_place(x: torch.Tensor, spec: ShiftSpec) -> Iterator[torch.Tensor]:
    """Shift frames ``x`` in place for the ``with`` body, then restore them bit for bit (also
    when the body raises). For callers that own ``x`` and record no gradient.

    Raises:
        RuntimeError: The dispatcher finds no way to shift ``x`` in place (it says why).
    """
    plan = choose(x, spec, in_place=True)
    if plan.strategy != 'in_place':
        raise RuntimeError(f'cannot shift x in place ({plan.backend}: {plan.why})')
    undo = BACKENDS[plan.backend].shift_(x, spec, True)
    try:
        yield x
    finally:
        undo()


def temporal_shift_reference(
    x: torch.Tensor,
    num_segments: int,
    shift_div: int = 8,
    mode: ShiftMode = 'bidirectional',
) -> torch.Tensor:
    """A plain frame-by-frame loop with the meaning of :func:`temporal_shift`, for tests."""
    nt, c = x.shape[:2]
    fold = c // shift_div
    out = torch.zeros_like(x)
    for clip in range(nt // num_segments):
        for t in range(num_segments):
            i = clip * num_segments + t
            if mode == 'causal':
                if t > 0:
                    out[i, :fold] = x[i - 1, :fold]
                out[i, fold:] = x[i, fold:]
            else:
                if t + 1 < num_segments:
                    out[i, :fold] = x[i + 1, :fold]
                if t > 0:
                    out[i, fold:2 * fold] = x[i - 1, fold:2 * fold]
                out[i, 2 * fold:] = x[i, 2 * fold:]
    return out
