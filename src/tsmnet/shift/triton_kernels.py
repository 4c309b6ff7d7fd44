"""The ``triton`` backend: one Triton kernel launch per shift, for GPU frames.

PyTorch's strided copies move the folds of channels-last frames (16-byte runs in bf16) badly;
these kernels walk memory in order instead, whatever the layout:

- :func:`_copy_kernel` writes every output element once, reading it from the frame its
  channel group reads (or zero outside the clip): one pass, like ``x.clone()``. Its backward
  is the same kernel with the directions reversed; nothing is saved.
- :func:`_move_kernel` shifts in place and undoes it: each lane owns one element of the folds
  of one clip and walks the clip's frames in the order that reads a frame before writing it,
  so only the folds move, and only the one frame that falls off the clip is kept (``edges``).

They only move elements, so they are written for integer views of the data (``int16`` for
fp16/bf16, ``int32`` for fp32...): one compiled kernel per element width, and the numbers
are exactly those of :func:`tsmnet.temporal_shift_reference`. The ops are registered with
``torch.library.triton_op`` (``tsmnet::triton_shift``, ``tsmnet::triton_shift_``,
``tsmnet::triton_unshift_``), so ``torch.compile`` and CUDA graphs keep them.

Triton is optional (``pip install tsmnet[gpu]``; PyTorch's CUDA wheels bring it). With
``TRITON_INTERPRET=1`` set before tsmnet is imported, the kernels run on CPU tensors through
Triton's interpreter: that is how CI tests them without a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from . import library
from .spec import ShiftSpec, dense_frames, frames_layout, is_lazy_view

try:
    import triton
    import triton.language as tl
except ImportError:  # optional: the other backends do without it
    triton = None

NAME = 'triton'
INTERPRET = os.environ.get('TRITON_INTERPRET', '0') not in ('', '0')
BLOCK = 1024
# the integer type of each element width the kernels move
_INT_OF_WIDTH = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def status() -> str:
    """Why the backend is unavailable here ('' when it is)."""
    if triton is None:
        return 'triton is not installed (pip install triton, or tsmnet[gpu])'
    if not (INTERPRET or torch.cuda.is_available()):
        return ('no CUDA device, and TRITON_INTERPRET=1 was not set before import (the '
                'interpreter runs the kernels on CPU tensors)')
    return ''


def reasons(x: torch.Tensor, in_place: bool) -> list[str]:
    """Why the kernels cannot take ``x``."""
    why = []
    if triton is None:
        return [status()]
    if x.device.type != 'cuda' and not (INTERPRET and x.device.type == 'cpu'):
        why.append(f'x is on {x.device.type}: Triton runs CUDA tensors (CPU tensors only '
                   f'under TRITON_INTERPRET=1)')
    if x.layout != torch.strided or frames_layout(x) == 'strided':
        why.append('x is neither contiguous nor channels-last')
    if x.element_size() not in _INT_OF_WIDTH or x.is_complex():
        why.append(f'x has dtype {x.dtype}')
    if is_lazy_view(x):
        why.append('x is a conjugate, negative or quantized view')
    if x.numel() == 0:
        why.append('x is empty')
    return why


if triton is not None:

    @triton.jit
    def _group_dir(c, fold, d0, d1, GROUPS: tl.constexpr):
        """The direction of channel ``c``: ``d0`` in group 0, ``d1`` in group 1, else 0."""
        g = c // fold
        d = tl.where(g == 0, d0, 0)
        if GROUPS > 1:
            d = tl.where(g == 1, d1, d)
        return d

    @triton.jit
    def _copy_kernel(x_ptr, out_ptr, total, t, channels, pixels, fold, d0, d1,
                     GROUPS: tl.constexpr, CHANNELS_LAST: tl.constexpr,
                     BLOCK: tl.constexpr):
        """``out = shift(x)``: lane ``i`` writes element ``i`` of the output in memory order."""
        i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = i < total
        frame_size = channels * pixels
        frame = i // frame_size
        within = i % frame_size
        if CHANNELS_LAST:
            c = within % channels
        else:
            c = within // pixels
        d = _group_dir(c, fold, d0, d1, GROUPS)
        src_t = frame % t + d
        inside = (src_t >= 0) & (src_t < t)
        value = tl.load(x_ptr + i + d * frame_size, mask=mask & inside, other=0)
        tl.store(out_ptr + i, value, mask=mask)

    @triton.jit
    def _move_kernel(x_ptr, edges_ptr, t, channels, pixels, fold, d0, d1,
                     GROUPS: tl.constexpr, CHANNELS_LAST: tl.constexpr, UNDO: tl.constexpr,
                     KEEP: tl.constexpr, BLOCK: tl.constexpr):
        """Shift the folds of clip ``program_id(0)`` in place (or undo it): lane ``j`` owns
        element ``j`` of the folds of a frame and walks the clip's frames itself."""
        clip = tl.program_id(0).to(tl.int64)
        j = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        width = GROUPS * fold  # shifted channels
        per_frame = width * pixels
        mask = j < per_frame
        if CHANNELS_LAST:
            c = j % width
            offset = (j // width) * channels + c
        else:
            c = j // pixels
            offset = j
        d = _group_dir(c, fold, d0, d1, GROUPS)
        if UNDO:
            d = -d
        up = d > 0  # frame i takes frame i + 1, so frames are walked upward
        frame_size = channels * pixels
        base = x_ptr + clip * t * frame_size + offset
        edge = edges_ptr + clip * per_frame + j
        for s in range(0, t):
            ti = tl.where(up, s, t - 1 - s)
            src = ti + d
            inside = (src >= 0) & (src < t)
            if KEEP and not UNDO:
                if s == 0:  # the frame that falls off the clip, for the undo
                    tl.store(edge, tl.load(base + ti * frame_size, mask=mask), mask=mask)
            value = tl.load(base + src * frame_size, mask=mask & inside, other=0)
            if UNDO:
                if s == t - 1:
                    value = tl.load(edge, mask=mask)
            tl.store(base + ti * frame_size, value, mask=mask)


def _as_ints(x: torch.Tensor) -> torch.Tensor:
    """``x`` viewed as integers of its element width (the kernels only move elements)."""
    return x.view(_INT_OF_WIDTH[x.element_size()])


def _dims(x: torch.Tensor, fold: int, dirs: list[int]) -> tuple[int, ...]:
    if not 1 <= len(dirs) <= 2:
        raise ValueError(f'dirs must hold 1 or 2 directions, got {dirs}')
    if fold < 1 or fold * len(dirs) > x.shape[1]:
        raise ValueError(f'{len(dirs)} groups of fold={fold} channels do not fit in '
                         f'{x.shape[1]} channels')
    return x.shape[1], x.shape[2] * x.shape[3], dirs[0], dirs[-1]


if INTERPRET:
    # The interpreter runs kernels as Python on real tensors: it cannot be traced (no fake
    # tensors), so its ops are plain custom ops with fake rules written out.
    _define, _wrap = torch.library.custom_op, lambda kernel: kernel
else:
    _define, _wrap = torch.library.triton_op, torch.library.wrap_triton

if triton is not None:

    @_define(f'{library.NAMESPACE}::triton_shift', mutates_args=())
    def triton_shift(x: torch.Tensor, t: int, fold: int, dirs: list[int]) -> torch.Tensor:
        """The copying shift, one launch (see :func:`_copy_kernel`)."""
        channels, pixels, d0, d1 = _dims(x, fold, dirs)
        out = library.copy_like(x)
        total = x.numel()
        grid = (triton.cdiv(total, BLOCK),)
        _wrap(_copy_kernel)[grid](
            _as_ints(x), _as_ints(out), total, t, channels, pixels, fold, d0, d1,
            GROUPS=len(dirs), CHANNELS_LAST=not x.is_contiguous(), BLOCK=BLOCK)
        return out

    @_define(f'{library.NAMESPACE}::triton_shift_', mutates_args={'x'})
    def triton_shift_(x: torch.Tensor, t: int, fold: int, dirs: list[int],
                      keep: bool) -> torch.Tensor:
        """Shift ``x`` in place, one launch; return the frames that fell off each clip
        (empty unless ``keep``), which :func:`triton_unshift_` needs."""
        channels, pixels, d0, d1 = _dims(x, fold, dirs)
        per_frame = len(dirs) * fold * pixels
        clips = x.shape[0] // t
        edges = x.new_empty((clips * per_frame if keep else 0,))
        grid = (clips, triton.cdiv(per_frame, BLOCK))
        _wrap(_move_kernel)[grid](
            _as_ints(x), _as_ints(edges) if keep else _as_ints(x), t, channels, pixels, fold,
            d0, d1, GROUPS=len(dirs), CHANNELS_LAST=not x.is_contiguous(), UNDO=False,
            KEEP=keep, BLOCK=BLOCK)
        return edges

    @_define(f'{library.NAMESPACE}::triton_unshift_', mutates_args={'x'})
    def triton_unshift_(x: torch.Tensor, t: int, fold: int, dirs: list[int],
                        edges: torch.Tensor) -> None:
        """Undo :func:`triton_shift_` (with ``keep``), given its edges: one launch."""
        channels, pixels, d0, d1 = _dims(x, fold, dirs)
        per_frame = len(dirs) * fold * pixels
        clips = x.shape[0] // t
        if edges.numel() != clips * per_frame or edges.dtype != x.dtype:
            raise ValueError('edges do not come from triton_shift_ of this x')
        grid = (clips, triton.cdiv(per_frame, BLOCK))
        _wrap(_move_kernel)[grid](
            _as_ints(x), _as_ints(edges), t, channels, pixels, fold, d0, d1,
            GROUPS=len(dirs), CHANNELS_LAST=not x.is_contiguous(), UNDO=True, KEEP=True,
            BLOCK=BLOCK)

    library.register_gradient(triton_shift, prepare=dense_frames)

    if INTERPRET:

        @triton_shift.register_fake
        def _(x: torch.Tensor, t: int, fold: int, dirs: list[int]) -> torch.Tensor:
            return library.copy_like(x)

        @triton_shift_.register_fake
        def _(x: torch.Tensor, t: int, fold: int, dirs: list[int], keep: bool
              ) -> torch.Tensor:
            per_frame = len(dirs) * fold * x.shape[2] * x.shape[3]
            return x.new_empty((x.shape[0] // t * per_frame if keep else 0,))

        @triton_unshift_.register_fake
        def _(x: torch.Tensor, t: int, fold: int, dirs: list[int], edges: torch.Tensor
              ) -> None:
            return None


def copy(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The shift of ``x`` into a new tensor of its memory format (one launch)."""
    return triton_shift(x, *library.op_args(spec))


def shift_(x: torch.Tensor, spec: ShiftSpec, keep: bool) -> Callable[[], None]:
    """Shift ``x`` in place (one launch, only the folds move); return what undoes it."""
    args = library.op_args(spec)
    edges = triton_shift_(x, *args, keep)
    if not keep:
        return library.keep_nothing
    return lambda: triton_unshift_(x, *args, edges)


def traced(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The differentiable registered op, for compiled graphs."""
    return triton_shift(x, *library.op_args(spec))
