"""The shift done in place for inference, and undone afterwards.

Inside a ResNetTSM the input of every shift is an activation that nothing else reads while
the following module runs: the block input is read again only after it (as the residual
identity) or before it (by the downsample conv). So on the CPU the shift can move the two folds
inside that tensor, let the module read it, and move them back, instead of writing a whole
shifted copy. Only the shifted channels move: with the native kernels (:mod:`tsmnet.native`)
twice (shifted, shifted back), half the memory traffic of a copy, in two calls; with PyTorch
ops three times (kept aside, written shifted, put back), in six kernels. The numbers are those of
``net(temporal_shift(x))`` exactly. Inference uses :func:`shifted_in_place`; training uses
it inside the fused shift + conv (:mod:`tsmnet.fused`), where the gradient, a tensor of its
own, is shifted back with :func:`shift_in_place_`.

Only :class:`tsmnet.TemporalShift` modules that a backbone builds use this (their
``inplace=True``); a user's own tensor is never modified, even briefly, by the public op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from . import native
from .ops import _Group


def can_shift_in_place(x: torch.Tensor, autograd: bool = False) -> bool:
    """Frames on the CPU that view as ``[N, T, C, H, W]`` without a copy, and (unless
    ``autograd``, for callers that keep autograd out themselves) no autograd to confuse.

    On a GPU the shift is bound by kernel launches, not memory traffic, and the extra small
    kernels here cost more than the two of the copying shift (measured on an H200 with an
    earlier, seven-copies-per-fold version: ResNet-50-TSM inference 1.17x the plain
    ResNet-50 instead of 1.09x; not measured since).
    """
    return (x.device.type == 'cpu' and (autograd or not torch.is_grad_enabled())
            and x.dim() == 4
            and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)))


def _keep_nothing() -> None:
    """The undo of a shift that is not to be undone."""


def _shift_in_place(x: torch.Tensor, num_segments: int, groups: tuple[_Group, ...],
                    keep: bool) -> Callable[[], None]:
    """Shift ``x`` in place; return what undoes it (with ``keep``; else it does nothing).

    Contiguous and channels-last CPU frames take the native kernels (:mod:`tsmnet.native`):
    one pass that moves each fold one frame along time, keeping only the frame it drops, and
    one pass back. The PyTorch ops instead keep the folds aside (they are adjacent from
    channel 0), write them back shifted from there, and put them back to undo.
    """
    kernels = native.kernels_for(x)
    if kernels is not None:
        fold, dirs = native.fold_and_dirs(groups)
        edges = kernels.shift_(x, num_segments, fold, dirs, keep)
        if not keep:
            return _keep_nothing
        return lambda: kernels.unshift_(x, num_segments, fold, dirs, edges)
    nt, c, h, w = x.shape
    t = num_segments
    x5 = x.view(nt // t, t, c, h, w) if x.is_contiguous() else (
        x.permute(0, 2, 3, 1).view(nt // t, t, h, w, c).permute(0, 1, 4, 2, 3))
    region = x5[:, :, :max(hi for _, hi, _ in groups)]
    kept = region.clone()
    for lo, hi, d in groups:
        if t > 1 and d > 0:  # frame i reads frame i + 1
            x5[:, :-1, lo:hi].copy_(kept[:, 1:, lo:hi])
        elif t > 1:  # frame i reads frame i - 1
            x5[:, 1:, lo:hi].copy_(kept[:, :-1, lo:hi])
        x5[:, t - 1 if d > 0 else 0, lo:hi].zero_()  # the frame outside the clip
    return (lambda: region.copy_(kept)) if keep else _keep_nothing


def shift_in_place_(x: torch.Tensor, num_segments: int,
                    groups: tuple[_Group, ...]) -> torch.Tensor:
    """Shift ``x`` ``[N * T, C, H, W]`` in place, for good, and return it: for a tensor that
    is the caller's own (as a gradient just computed)."""
    _shift_in_place(x, num_segments, groups, keep=False)
    return x


@contextmanager
def shifted_in_place(x: torch.Tensor, num_segments: int,
                     groups: tuple[_Group, ...]) -> Iterator[torch.Tensor]:
    """Shift ``x`` ``[N * T, C, H, W]`` in place for the ``with`` body, then restore it
    (also when the body raises)."""
    undo = _shift_in_place(x, num_segments, groups, keep=True)
    try:
        yield x
    finally:
        undo()
