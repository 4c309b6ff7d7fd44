"""The ``functional`` backend: the shift from slices, zeros and concatenation only.

This is what tracing, ONNX export and TorchScript record: every exporter maps it to
shape-generic ops, so an exported model keeps working for any number of clips. It takes any
tensor on any device, is differentiable through autograd, and is the slowest backend.
"""

from __future__ import annotations

import torch

from .spec import ShiftSpec

NAME = 'functional'


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
    for lo, hi, d in spec.groups():
        zero = torch.zeros_like(x5[:, :1, lo:hi])
        if d > 0:  # drop the first frame, one zero frame at the end of T
            parts.append(torch.cat([x5[:, 1:, lo:hi], zero], dim=1))
        else:  # drop the last frame, one zero frame at the start of T
            parts.append(torch.cat([zero, x5[:, :-1, lo:hi]], dim=1))
        start = hi
    parts.append(x5[:, :, start:])
    return torch.cat(parts, dim=2).reshape(nt, c, h, w)


# The backend interface: its copy is the shift itself, differentiable and traceable as is.
copy = shift
traced = shift
