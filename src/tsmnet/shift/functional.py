"""The ``functional`` backend: the shift from standard differentiable ops only.

Two forms, same numbers:

- :func:`shift`, slices, zeros and concatenation: what tracing, ONNX export and TorchScript
  record. Every exporter maps it to shape-generic ops, so an exported model keeps working for
  any number of clips. It takes any tensor on any device and is the slowest backend in eager.
  Within :func:`flat_frames` (tsmnet's ONNX and OpenVINO writers), it never views the frames
  as ``[N, T, ...]``, which the CPU runtimes run faster.
- :func:`gathered`, a gather along time written as pads and selects over index arithmetic:
  what ``torch.compile`` gets (:data:`traced`). Inductor turns it into one pointwise loop
  that it fuses with the op before (a ReLU) and lays out as the conv after wants
  (channels-last on the CPU), so the shift costs no pass of its own, where an opaque
  registered op costs two layout conversions per site and slices and cat a buffer per site.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F

from .spec import ShiftSpec

NAME = 'functional'

FlatZeros = Literal['select', 'multiply']
_FLAT: contextvars.ContextVar[FlatZeros | None] = contextvars.ContextVar('tsmnet_shift_flat',
                                                                  default=None)


@contextlib.contextmanager
def flat_frames(zeros: FlatZeros = 'select') -> Iterator[None]:
    """Within: :func:`shift` keeps the frames flat, ``[N * T, C, H, W]`` (same numbers):
    moved by one along the frames, with each clip's boundary frame zeroed by ``where``
    (``zeros='select'``) or by a 0/1 product (``'multiply'``).

    For the CPU runtimes: the default form views the frames as ``[N, T, ...]``, and ONNX
    Runtime and OpenVINO convert every conv's channels-last (blocked) layout back and forth
    around each such view (ResNet-50-TSM int8 at 224: 17 % of ONNX Runtime's time in
    ``Transpose``, 26 % of OpenVINO's in reorders). Flat, the layout passes through the shift
    (docs/performance.md). ``'multiply'`` is for ONNX Runtime's int8, which quantizes a
    ``Mul`` but not a ``Where``; a product lets a non-finite value of the next clip through
    (0 x inf), which a quantized tensor cannot hold, so use it only for int8.
    """
    if zeros not in ('select', 'multiply'):
        raise ValueError(f"zeros must be 'select' or 'multiply', got {zeros!r}")
    token = _FLAT.set(zeros)
    try:
        yield
    finally:
        _FLAT.reset(token)


def status() -> str:
    """Why the backend is unavailable here: never ('')."""
    return ''


def reasons(x: torch.Tensor, in_place: bool) -> list[str]:
    """Why the backend cannot take ``x``: only the in-place strategy, which it lacks."""
    return ['it has no in-place shift'] if in_place else []


def shift(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The shift of frames ``x`` ``[N * T, C, H, W]``: a new tensor, traceable with a symbolic
    batch size.

    The zero frame is ``zeros_like`` and joined with ``cat`` rather than ``F.pad``: the
    default (dynamo) ONNX exporter emits Pad-18, which ONNX cannot convert down, so a
    requested opset 17 would silently come out as 18.
    """
    zeros = _FLAT.get()
    if zeros is not None:
        return _flat(x, spec, zeros)
    nt, c, h, w = x.shape
    t = spec.num_segments
    x5 = x.reshape(nt // t, t, c, h, w)
    parts = []
    start = 0
    for lo, hi, d in spec.groups():
        zero = torch.zeros_like(x5[:, :1, lo:hi])
        if d > 0:  # drop the first frame, one zero frame at the end of T
            parts.append(torch.cat([x5[:, 1:, lo:hi], zero], dim=1))
        else:  # drop the last frame, one zero frame at the start of T
            parts.append(torch.cat([zero, x5[:, :-1, lo:hi]], dim=1))
        start = hi
    parts.append(x5[:, :, start:])
    return torch.cat(parts, dim=2).reshape(nt, c, h, w)


def _frame_in_clip(x: torch.Tensor, t: int) -> torch.Tensor:
    """Each frame's index within its clip, ``[N * T, 1, 1, 1]`` (traceable: from the symbolic
    frame count)."""
    return (torch.arange(x.shape[0], device=x.device) % t).view(-1, 1, 1, 1)


def _flat(x: torch.Tensor, spec: ShiftSpec, zeros: FlatZeros) -> torch.Tensor:
    """:func:`shift` without a view to ``[N, T, ...]`` (:func:`flat_frames`)."""
    t = spec.num_segments
    frame = _frame_in_clip(x, t)
    parts = []
    start = 0
    for lo, hi, d in spec.groups():
        # rolled by one frame: the frame that wraps around is a clip boundary, zeroed below
        # (a zero tensor would be a constant, which int8 quantizes apart from the site)
        group = x[:, lo:hi]
        if d > 0:  # frame i reads frame i + 1; the last frame of a clip reads zeros
            moved, keep = torch.cat([group[1:], group[:1]]), frame < t - 1
        else:  # frame i reads frame i - 1; the first frame of a clip reads zeros
            moved, keep = torch.cat([group[-1:], group[:-1]]), frame > 0
        parts.append(moved * keep.to(x.dtype) if zeros == 'multiply'
                     else torch.where(keep, moved, 0))
        start = hi
    parts.append(x[:, start:])
    return torch.cat(parts, dim=1)


def gathered(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The shift of frames ``x`` ``[N * T, C, H, W]`` as one pointwise expression: output
    ``[i, c]`` is ``x[i + d, c]`` for a channel of a group with direction ``d`` when frame
    ``i + d`` is in the clip of frame ``i``, zero when it is not, and ``x[i, c]`` for the
    other channels. No view to ``[N, T, ...]`` (a view would fix the layout of what it views
    under inductor), no cat (inductor gives a cat's inputs a buffer each): pads along the
    frames and ``where`` over frame and channel indices, which inductor fuses into one loop.
    """
    c = x.shape[1]
    t = spec.num_segments
    frame = _frame_in_clip(x, t)
    channel = torch.arange(c, device=x.device).view(1, -1, 1, 1)
    out = x
    for lo, hi, d in reversed(spec.groups()):
        if d > 0:  # frame i reads frame i + 1; the last frame of a clip reads zeros
            moved = torch.where(frame < t - 1, F.pad(x[1:], (0, 0, 0, 0, 0, 0, 0, 1)), 0)
        else:  # frame i reads frame i - 1; the first frame of a clip reads zeros
            moved = torch.where(frame > 0, F.pad(x[:-1], (0, 0, 0, 0, 0, 0, 1, 0)), 0)
        out = torch.where((channel >= lo) & (channel < hi), moved, out)
    return out


# The backend interface: its copy is the shift itself, differentiable and traceable as is;
# compiled graphs get the pointwise form.
copy = shift
traced = gathered
