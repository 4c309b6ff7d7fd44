"""The public shift: :func:`temporal_shift`, its plain reference, and the entry of modules.

TSM (Lin, Gan & Han, ICCV 2019, https://arxiv.org/abs/1811.08383) moves a fraction of the
channels of every frame to its neighbouring frames, so that a per-frame 2D network mixes
information across time at no extra FLOPs. The op costs one copy of its input; modules may
shift in place or fuse the shift with their conv. Which code runs is chosen by
:func:`tsmnet.shift.dispatch.choose` and nowhere else.
"""

from __future__ import annotations

import torch
from torch import nn

from .._torch_compat import torch_function_mode_enabled
from . import native
from .autograd import shift_copy
from .dispatch import BACKENDS, NATIVE_COPY, choose, plain_eager_cpu
from .fused import shift_conv2d
from .in_place import shifted_in_place
from .spec import ShiftMode, spec_for


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
    key = None
    if (type(x) is torch.Tensor and type(num_segments) is int and type(shift_div) is int
            and type(mode) is str and plain_eager_cpu(x)):
        key = (num_segments, shift_div, mode, x.shape, x.stride(), x.dtype)
        op_args = _native_ready.get(key)
        if op_args is not None and not (x.is_conj() or x.is_neg() or
                                        torch_function_mode_enabled()):
            # what choose() answers for this signature (NATIVE_COPY), asked once: one C++ op
            # call, its autograd (and forward AD) in C++ too
            return native.copy_op(x, *op_args)
    spec = spec_for(x, num_segments, shift_div, mode)
    plan = choose(x, spec)
    if plan is NATIVE_COPY and key is not None:
        if len(_native_ready) >= 1024:
            _native_ready.clear()
        _native_ready[key] = spec.op_args
    return shift_copy(x, spec, plan)


# (num_segments, shift_div, mode, shape, strides, dtype) -> the native op's arguments, for the
# signatures of plain CPU tensors that choose() sent to the native copy: the checks of the
# arguments and the layout stay out of the hot path
_native_ready: dict[tuple, tuple] = {}


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
            reads it meanwhile (as inside a ResNet block). Hooks, autograd, transforms and a
            ``net`` that could write into or return its input still make it copy (see
            :func:`tsmnet.shift.dispatch.choose`). Defaults to False.

    Returns:
        The output of ``net``.

    Raises:
        RuntimeError: A ``net`` trusted to read its input only (a class with
            ``reads_input_only = True``) wrote into it while it was shifted in place.
    """
    spec = spec_for(x, num_segments, shift_div, mode)
    plan = choose(x, spec, in_place=in_place, net=net)
    if plan.strategy == 'copy':
        return net(shift_copy(x, spec, plan))
    backend = BACKENDS[plan.backend]
    if plan.strategy != 'in_place':
        return shift_conv2d(x, net, spec, backend, plan.strategy == 'fused_in_place')
    with shifted_in_place(x, spec, backend) as shifted:
        version = None if shifted.is_inference() else shifted._version
        out = net(shifted)
        if version is not None and shifted._version != version:
            raise RuntimeError(
                f'{type(net).__name__} wrote into its input while TemporalShift(inplace=True) '
                f'had shifted it in place: it cannot be restored. Only classes whose forward '
                f'never writes into its input may set reads_input_only = True')
        if isinstance(out, torch.Tensor) and (
                out.untyped_storage().data_ptr() == shifted.untyped_storage().data_ptr()):
            out = out.clone()  # the output is (a view of) the input: keep the shifted values
    return out


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
