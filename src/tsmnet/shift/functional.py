"""The ``functional`` backend: the shift from standard differentiable ops only.

Two forms, same numbers:

- :func:`shift`, slices, zeros and concatenation: what tracing, ONNX export and TorchScript
  record. Every exporter maps it to shape-generic ops, so an exported model keeps working for
  any number of clips. It takes any tensor on any device and is the slowest backend in eager.
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

import torch
import torch.nn.functional as F

from .spec import ShiftSpec

NAME = 'functional'

_PAD_ZEROS = contextvars.ContextVar('tsmnet_shift_pad_zeros', default=False)


@contextlib.contextmanager
def zero_frames_as_pad() -> Iterator[None]:
    """Within: :func:`shift` records its zero frames as ``F.pad`` (same numbers).

    For OpenVINO: its int8 CPU kernels take a shift site in uint8 when the zero frame is a
    ``Pad``; a ``Concat`` with a zero tensor (the default form) leaves the conv after every
    shift (16 of ResNet-50's 53) in fp32, between quantize/dequantize steps (measured
    ResNet-50-TSM int8 at 224: 1.6x slower, docs/performance.md). Not the default: ONNX
    Runtime's int8 runs the ``cat`` form faster, and opset 17 has no such ``Pad``.
    """
    token = _PAD_ZEROS.set(True)
    try:
        yield
    finally:
        _PAD_ZEROS.reset(token)


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
    nt, c, h, w = x.shape
    t = spec.num_segments
    x5 = x.reshape(nt // t, t, c, h, w)
    parts = []
    start = 0
    pad = _PAD_ZEROS.get()
    for lo, hi, d in spec.groups():
        if pad:  # one zero frame after (d > 0) or before the frames kept, along T
            kept = x5[:, 1:, lo:hi] if d > 0 else x5[:, :-1, lo:hi]
            parts.append(F.pad(kept, (0, 0, 0, 0, 0, 0) + ((0, 1) if d > 0 else (1, 0))))
            start = hi
            continue
        zero = torch.zeros_like(x5[:, :1, lo:hi])
        if d > 0:  # drop the first frame, one zero frame at the end of T
            parts.append(torch.cat([x5[:, 1:, lo:hi], zero], dim=1))
        else:  # drop the last frame, one zero frame at the start of T
            parts.append(torch.cat([zero, x5[:, :-1, lo:hi]], dim=1))
        start = hi
    parts.append(x5[:, :, start:])
    return torch.cat(parts, dim=2).reshape(nt, c, h, w)


def gathered(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The shift of frames ``x`` ``[N * T, C, H, W]`` as one pointwise expression: output
    ``[i, c]`` is ``x[i + d, c]`` for a channel of a group with direction ``d`` when frame
    ``i + d`` is in the clip of frame ``i``, zero when it is not, and ``x[i, c]`` for the
    other channels. No view to ``[N, T, ...]`` (a view would fix the layout of what it views
    under inductor), no cat (inductor gives a cat's inputs a buffer each): pads along the
    frames and ``where`` over frame and channel indices, which inductor fuses into one loop.
    """
    nt, c = x.shape[:2]
    t = spec.num_segments
    frame = (torch.arange(nt, device=x.device) % t).view(-1, 1, 1, 1)
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
