"""The temporal shift as a plain function.

TSM (Lin, Gan & Han, ICCV 2019, https://arxiv.org/abs/1811.08383) moves a fraction of the
channels of every frame to its neighbouring frames, so that a per-frame 2D network mixes
information across time at no extra FLOPs.

The op costs one copy of its input. In eager autograd it runs as a custom function whose
backward is the opposite shift and which saves no tensor. Under tracing, export or
``torch.compile`` it is written with slices, zeros and concatenation, which every exporter maps to
shape-generic ONNX ops, so an exported model keeps working for any number of clips.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, NamedTuple

import torch

from . import native

ShiftMode = Literal['bidirectional', 'causal']
SHIFT_MODES: tuple[str, ...] = ('bidirectional', 'causal')

# A shifted channel group: (first channel, last channel + 1, direction). Direction +1 means
# frame t reads frame t + 1 (the group moves back in time); -1 means frame t reads t - 1.
_Group = tuple[int, int, int]


def check_shift_mode(mode: str, name: str = 'shift_mode') -> None:
    """Raise ``ValueError`` unless ``mode`` is one of :data:`SHIFT_MODES`."""
    if mode not in SHIFT_MODES:
        raise ValueError(f'{name} must be one of {SHIFT_MODES}, got {mode!r}')


def check_shift_div(shift_div: object, mode: str, name: str = 'shift_div') -> None:
    """Raise unless ``shift_div`` is an int that leaves room for the shifted folds.

    The bidirectional shift moves two folds of ``C // shift_div`` channels, so it needs
    ``shift_div >= 2``; the causal shift moves one fold and needs ``shift_div >= 1``.
    """
    if isinstance(shift_div, bool) or not isinstance(shift_div, int):
        raise TypeError(f'{name} must be an int, got {type(shift_div).__name__}')
    least = 2 if mode == 'bidirectional' else 1
    if shift_div < least:
        raise ValueError(
            f'{name} must be >= {least} for shift_mode={mode!r} (it shifts '
            f'{"two folds" if least == 2 else "one fold"} of C // {name} channels), '
            f'got {shift_div}')


def check_num_segments(num_segments: object, name: str = 'num_segments') -> None:
    """Raise unless ``num_segments`` is a positive int."""
    if isinstance(num_segments, bool) or not isinstance(num_segments, int):
        raise TypeError(f'{name} must be an int, got {type(num_segments).__name__}')
    if num_segments < 1:
        raise ValueError(f'{name} must be >= 1, got {num_segments}')


def check_frames(x: object, num_segments: int, shift_div: int,
                 mode: str = 'bidirectional') -> int:
    """Check the arguments of :func:`temporal_shift` (``mode`` aside); return the fold.

    Raises ``TypeError``/``ValueError`` naming the argument, what was expected and what came.
    """
    check_num_segments(num_segments)
    check_shift_div(shift_div, mode)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'x must be a torch.Tensor, got {type(x).__name__}')
    if x.dim() != 4:
        raise ValueError(f'x must be 4-D [N * T, C, H, W], got shape {tuple(x.shape)}')
    nt, c, h, w = x.shape
    if nt % num_segments != 0:
        raise ValueError(
            f'the batch of x ({nt} frames) must be a multiple of num_segments '
            f'({num_segments}): x holds [N * T, C, H, W] with T = num_segments')
    fold = c // shift_div
    if fold == 0:
        raise ValueError(
            f'shift_div={shift_div} leaves no channel to shift in x with {c} channels '
            f'(C // shift_div must be >= 1)')
    return fold


def _groups(fold: int, mode: str) -> tuple[_Group, ...]:
    if mode == 'causal':
        return ((0, fold, -1),)
    return ((0, fold, 1), (fold, 2 * fold, -1))


def _reversed(groups: tuple[_Group, ...]) -> tuple[_Group, ...]:
    return tuple((lo, hi, -d) for lo, hi, d in groups)


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


class _RowPlan(NamedTuple):
    """How :func:`_shift_copy` shifts contiguous frames of one shape: see :func:`_row_plan`."""

    source: torch.Tensor  # output row i is input row source[i]
    row: int  # elements per row (one fold of one frame)
    zero_size: tuple[int, int, int]  # the rows to zero, as one strided view of the output
    zero_stride: tuple[int, int, int]
    zero_offset: int


@lru_cache(maxsize=128)
def _row_plan(shape: torch.Size, t: int, groups: tuple[_Group, ...],
              device: torch.device) -> _RowPlan | None:
    """The row plan of the shift of contiguous frames ``[N * T, C, H, W]`` of ``shape``.

    With ``C = parts * fold`` the frames are ``N * T * parts`` rows of ``fold * H * W``
    elements, each a contiguous block: the shift is a selection of rows, except that each
    shifted fold has one row per clip (its frame outside the clip) that must be 0. Those
    rows sit at the same distance from each other in every clip, so they are one strided
    view. None where the channels do not split into whole folds or there is nothing to shift.
    """
    nt, c, h, w = shape
    fold = groups[0][1] - groups[0][0]
    if c % fold or nt * c * h * w == 0:
        return None
    clips, parts, row = nt // t, c // fold, fold * h * w
    source = torch.arange(nt * parts).view(clips, t, parts)
    zero_rows = []  # rows of a clip that must be 0
    for lo, _, d in groups:
        part = lo // fold
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


def _shift_copy(x: torch.Tensor, num_segments: int,
                groups: tuple[_Group, ...]) -> torch.Tensor:
    """One-copy shift of frames ``x`` ``[N * T, C, H, W]``: every element is written once.

    Contiguous and channels-last CPU frames take the native kernel (:mod:`tsmnet.native`):
    one call, one pass, like a clone. Without it, contiguous frames whose channels split
    into whole folds (every ResNet width) take two kernels (:func:`_row_plan`): one
    ``index_select`` of fold-sized rows, then one ``zero_`` of the rows outside the clip.
    Other layouts (channels-last included) take block copies:
    the unshifted channels, each shifted fold, and a zero frame per fold. The result has the
    memory format of ``x``. Python overhead counts here: it runs once per shift site.
    """
    kernels = native.kernels_for(x)
    if kernels is not None:
        return kernels.shift_copy(x, num_segments, *native.fold_and_dirs(groups))
    if x.is_contiguous():
        plan = _row_plan(x.shape, num_segments, groups, x.device)
        if plan is not None:
            out = x.view(-1, plan.row).index_select(0, plan.source)  # a new tensor: offset 0
            out.as_strided(plan.zero_size, plan.zero_stride, plan.zero_offset).zero_()
            return out.view_as(x)
    nt, c, h, w = x.shape
    t = num_segments
    clips = nt // t
    out, src, dst, dim = _like_frames(x.reshape(clips, t, c, h, w))
    start = 0
    for lo, hi, d in groups:
        if lo > start:
            dst.narrow(dim, start, lo - start).copy_(src.narrow(dim, start, lo - start))
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


def _shift_functional(x5: torch.Tensor, groups: tuple[_Group, ...]) -> torch.Tensor:
    """The same shift from slices and cat only: traceable with a symbolic batch size.

    The zero frame is ``zeros_like`` and joined with ``cat`` rather than ``F.pad``: the
    default (dynamo) ONNX exporter emits Pad-18, which ONNX cannot convert down, so a
    requested opset 17 would silently come out as 18.
    """
    parts = []
    start = 0
    for lo, hi, d in groups:
        if lo > start:
            parts.append(x5[:, :, start:lo])
        zero = torch.zeros_like(x5[:, :1, lo:hi])
        if d > 0:  # drop the first frame, one zero frame at the end of T
            parts.append(torch.cat([x5[:, 1:, lo:hi], zero], dim=1))
        else:  # drop the last frame, one zero frame at the start of T
            parts.append(torch.cat([zero, x5[:, :-1, lo:hi]], dim=1))
        start = hi
    parts.append(x5[:, :, start:])
    return torch.cat(parts, dim=2)


class _TemporalShiftFunction(torch.autograd.Function):
    """The shift under autograd: its gradient is the opposite shift; nothing is saved."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, num_segments: int,  # type: ignore[override]
                groups: tuple[_Group, ...]) -> torch.Tensor:
        ctx.num_segments, ctx.groups = num_segments, groups
        return _shift_copy(x, num_segments, groups)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _shift_copy(grad, ctx.num_segments, _reversed(ctx.groups)), None, None


def _is_tracing() -> bool:
    """Whether a tracer, exporter or ``torch.compile`` is recording.

    Both ONNX exporters record through one of these (the TorchScript one traces with
    ``torch.jit``, the dynamo one with ``torch.export``), so ``torch.onnx.is_in_onnx_export``,
    which costs more than the three checks together, is not asked.
    """
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()


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

    Args:
        x: Frames ``[N * T, C, H, W]``, the ``T = num_segments`` frames of a clip adjacent.
            Any memory format; the result has the same one.
        num_segments: Frames per clip ``T``.
        shift_div: The fold is ``C // shift_div`` channels. Defaults to 8.
        mode: ``'bidirectional'`` (default) or ``'causal'``.

    Returns:
        The shifted frames, ``[N * T, C, H, W]``, a new tensor.
    """
    check_shift_mode(mode, 'mode')
    fold = check_frames(x, num_segments, shift_div, mode)
    groups = _groups(fold, mode)
    if _is_tracing():
        nt, c, h, w = x.shape
        x5 = x.reshape(nt // num_segments, num_segments, c, h, w)
        return _shift_functional(x5, groups).reshape(nt, c, h, w)
    if torch.is_grad_enabled() and x.requires_grad:
        return _TemporalShiftFunction.apply(x, num_segments, groups)
    return _shift_copy(x, num_segments, groups)


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
