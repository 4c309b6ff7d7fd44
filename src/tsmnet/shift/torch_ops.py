"""The ``torch`` backend: the shift from a few PyTorch ops, on any device and layout.

It is the fallback of the native CPU kernels and of the Triton GPU kernel, gives exactly
their numbers (a shift only moves values), and is registered as the op
``tsmnet::torch_shift`` so that ``torch.compile`` keeps it as one call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import torch

from . import library
from .spec import ShiftSpec, dense_frames, frames_layout

NAME = 'torch'


def status() -> str:
    """Why the backend is unavailable here: never ('')."""
    return ''


def reasons(x: torch.Tensor, in_place: bool) -> list[str]:
    """Why this backend cannot take ``x`` (for the in-place strategy if ``in_place``)."""
    if x.layout != torch.strided:
        return [f'x has layout {x.layout}, not strided']
    if not in_place:
        return []
    why = []
    if frames_layout(x) == 'strided':
        why.append('in place needs contiguous or channels-last frames')
    if x.device.type != 'cpu':
        # measured on an H200: its six small kernels cost more than the copy's two
        why.append(f'in place with PyTorch ops is slower than a copy on {x.device.type}')
    return why


class _RowPlan(NamedTuple):
    """How :func:`copy` shifts contiguous frames of one shape: see :func:`_row_plan`."""

    source: torch.Tensor  # output row i is input row source[i]
    row: int  # elements per row (one fold of one frame)
    zero_size: tuple[int, int, int]  # the rows to zero, as one strided view of the output
    zero_stride: tuple[int, int, int]
    zero_offset: int


@lru_cache(maxsize=128)
def _row_plan(shape: torch.Size, spec: ShiftSpec, device: torch.device) -> _RowPlan | None:
    """The row plan of the shift of contiguous frames ``[N * T, C, H, W]`` of ``shape``.

    With ``C = parts * fold`` the frames are ``N * T * parts`` rows of ``fold * H * W``
    elements, each a contiguous block: the shift is a selection of rows, except that each
    shifted fold has one row per clip (its frame outside the clip) that must be 0. Those
    rows sit at the same distance from each other in every clip, so they are one strided
    view. None where the channels do not split into whole folds or there is nothing to shift.
    """
    nt, c, h, w = shape
    t, fold = spec.num_segments, spec.fold
    if c % fold or nt * c * h * w == 0:
        return None
    clips, parts, row = nt // t, c // fold, fold * h * w
    source = torch.arange(nt * parts).view(clips, t, parts)
    zero_rows = []  # rows of a clip that must be 0
    for part, d in enumerate(spec.dirs):
        if d > 0:  # frame i reads frame i + 1
            source[:, :-1, part] = source[:, 1:, part].clone()
            zero_rows.append((t - 1) * parts + part)
        else:  # frame i reads frame i - 1
            source[:, 1:, part] = source[:, :-1, part].clone()
            zero_rows.append(part)
    zero_rows.sort()
    step = zero_rows[-1] - zero_rows[0] if len(zero_rows) > 1 else 1  # at most two folds
    return _RowPlan(source.view(-1).to(device), row, (clips, len(zero_rows), row),
                    (t * parts * row, step * row, 1), zero_rows[0] * row)


def _like_frames(x5: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """An empty result for ``x5`` ``[N, T, C, H, W]`` in its memory format, and views of both.

    Returns ``(out, src, dst, dim)``: ``src`` and ``dst`` view ``x5`` and ``out`` with clip
    and time at dims 0 and 1 and the channels at ``dim``. Contiguous frames become
    ``[N, T, C, H * W]`` (``dim=2``) and channels-last frames ``[N, T, H * W, C]``
    (``dim=3``), so that each copy walks memory in order with as few dims as the layout
    allows; any other layout stays 5-D (``dim=2``).
    """
    n, t, c, h, w = x5.shape
    if x5.is_contiguous():
        out = torch.empty_like(x5, memory_format=torch.contiguous_format)
        return out, x5.view(n, t, c, h * w), out.view(n, t, c, h * w), 2
    last = x5.permute(0, 1, 3, 4, 2)
    if last.is_contiguous():
        out_last = x5.new_empty((n, t, h, w, c))
        return (out_last.permute(0, 1, 4, 2, 3), last.view(n, t, h * w, c),
                out_last.view(n, t, h * w, c), 3)
    out = torch.empty_like(x5)
    return out, x5, out, 2


def copy(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The shift of frames ``x`` ``[N * T, C, H, W]`` into a new tensor of its memory format.

    Contiguous frames whose channels split into whole folds (every ResNet width) take two
    kernels (:func:`_row_plan`): one ``index_select`` of fold-sized rows, then one ``zero_``
    of the rows outside the clip. Other layouts (channels-last included) take block copies:
    the unshifted channels, each shifted fold, and a zero frame per fold. Python overhead
    counts here: it runs once per shift site.
    """
    if x.is_contiguous():
        plan = _row_plan(x.shape, spec, x.device)
        if plan is not None:
            out = x.view(-1, plan.row).index_select(0, plan.source)  # a new tensor: offset 0
            out.as_strided(plan.zero_size, plan.zero_stride, plan.zero_offset).zero_()
            return out.view_as(x)
    nt, c, h, w = x.shape
    t = spec.num_segments
    out, src, dst, dim = _like_frames(x.reshape(nt // t, t, c, h, w))
    start = 0
    for lo, hi, d in spec.groups():
        s_fold, d_fold = src.narrow(dim, lo, hi - lo), dst.narrow(dim, lo, hi - lo)
        if t > 1:
            # d > 0: frame i reads frame i + 1; d < 0: frame i reads frame i - 1
            d_fold.narrow(1, 0 if d > 0 else 1, t - 1).copy_(
                s_fold.narrow(1, 1 if d > 0 else 0, t - 1))
        d_fold.narrow(1, t - 1 if d > 0 else 0, 1).zero_()  # the frame outside the clip
        start = hi
    if c > start:
        dst.narrow(dim, start, c - start).copy_(src.narrow(dim, start, c - start))
    return out.reshape(nt, c, h, w)


def shift_(x: torch.Tensor, spec: ShiftSpec, keep: bool) -> Callable[[], None]:
    """Shift contiguous or channels-last frames ``x`` in place; return what undoes it (with
    ``keep``; else a no-op). The folds (adjacent from channel 0) are kept aside, written back
    shifted from there, and put back by the undo: only the shifted channels move."""
    nt, c, h, w = x.shape
    t = spec.num_segments
    x5 = x.view(nt // t, t, c, h, w) if x.is_contiguous() else (
        x.permute(0, 2, 3, 1).view(nt // t, t, h, w, c).permute(0, 1, 4, 2, 3))
    region = x5[:, :, :spec.shifted_channels]
    kept = region.clone()
    for lo, hi, d in spec.groups():
        if t > 1 and d > 0:  # frame i reads frame i + 1
            x5[:, :-1, lo:hi].copy_(kept[:, 1:, lo:hi])
        elif t > 1:  # frame i reads frame i - 1
            x5[:, 1:, lo:hi].copy_(kept[:, :-1, lo:hi])
        x5[:, t - 1 if d > 0 else 0, lo:hi].zero_()  # the frame outside the clip
    return (lambda: region.copy_(kept)) if keep else library.keep_nothing


@torch.library.custom_op(f'{library.NAMESPACE}::torch_shift', mutates_args=())
def torch_shift(x: torch.Tensor, t: int, fold: int, dirs: list[int]) -> torch.Tensor:
    """The registered copying shift of this backend (``torch.compile`` keeps it whole)."""
    return copy(x, ShiftSpec(t, fold, tuple(dirs)))


@torch_shift.register_fake
def _(x: torch.Tensor, t: int, fold: int, dirs: list[int]) -> torch.Tensor:
    return library.copy_like(x)


library.register_gradient(torch_shift)


def traced(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The differentiable registered op, for compiled graphs (other strides than contiguous
    or channels-last are made contiguous first, so that the op's fake result matches)."""
    return torch_shift(dense_frames(x), *library.op_args(spec))
