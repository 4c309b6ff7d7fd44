"""Rotation metadata: a video's display matrix, turned upright the way ffmpeg's autorotate does.

Phones store frames as the sensor saw them and a display matrix (``AV_FRAME_DATA_DISPLAYMATRIX``,
the ``tkhd`` matrix of MP4/MOV) saying how to show them. ``ffmpeg`` (and ``ffplay``) apply it by
default: the matrix's rotation ``theta`` (FFmpeg's ``get_rotation``: minus
``av_display_rotation_get``, rounded, in [0, 360)) picks

- about 90: ``transpose=clock``, or ``transpose=cclock_flip`` when the matrix mirrors
  (``matrix[3] > 0``);
- about 180: ``hflip`` when ``matrix[0] < 0``, then ``vflip`` when ``matrix[4] < 0``;
- about 270: ``transpose=cclock``, or ``transpose=clock_flip`` when ``matrix[3] < 0``;
- about 0: ``vflip`` when ``matrix[4] < 0``, else nothing;
- any other angle: ffmpeg's ``rotate`` filter; here the frames stay as stored and a warning
  is logged (no phone writes such angles).

decord (and so MMAction2) ignores the matrix. The operations are exact pixel permutations,
done here on RGB frames ``[H, W, 3]``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

Orientation = tuple[Literal['clock', 'cclock', 'cclock_flip', 'clock_flip', 'hflip', 'vflip'],
                    ...]
_ONE = float(1 << 16)  # the matrix's first two columns are 16.16 fixed point


def display_rotation(matrix: Sequence[int]) -> float:
    """The counter-clockwise angle of a display matrix (FFmpeg's ``av_display_rotation_get``),
    degrees in (-180, 180]; NaN for a degenerate matrix."""
    a, b, c, d = (matrix[i] / _ONE for i in (0, 1, 3, 4))
    sx, sy = math.hypot(a, c), math.hypot(b, d)
    if sx == 0.0 or sy == 0.0:
        return math.nan
    return -math.degrees(math.atan2(b / sy, a / sx))


def orientation(matrix: Sequence[int] | None) -> Orientation:
    """The operations that show frames upright, in order (ffmpeg's autorotate filters).

    Args:
        matrix: the 9 int32 of a display matrix, or None (no rotation).

    Returns:
        A tuple of ``'clock'``, ``'cclock'``, ``'cclock_flip'``, ``'clock_flip'`` (the
        ``transpose`` filter's directions), ``'hflip'`` and ``'vflip'``; empty when the frames
        are upright as stored.
    """
    if matrix is None:
        return ()
    if len(matrix) != 9:
        raise ValueError(f'a display matrix has 9 entries, got {len(matrix)}')
    rotation = display_rotation(matrix)
    if math.isnan(rotation):
        logger.warning('a degenerate display matrix %s: frames left as stored', list(matrix))
        return ()
    theta = -round(rotation)
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return ('cclock_flip',) if matrix[3] > 0 else ('clock',)
    if abs(theta - 180) < 1:
        return (('hflip',) if matrix[0] < 0 else ()) + (('vflip',) if matrix[4] < 0 else ())
    if abs(theta - 270) < 1:
        return ('clock_flip',) if matrix[3] < 0 else ('cclock',)
    if abs(theta) < 1:
        return ('vflip',) if matrix[4] < 0 else ()
    logger.warning('a display matrix rotating by %g degrees (not a multiple of 90): frames '
                   'left as stored', theta)
    return ()


def swaps_sides(ops: Orientation) -> bool:
    """Whether the upright frame is the stored one turned on its side (height and width
    swapped)."""
    return any(op in ('clock', 'cclock', 'cclock_flip', 'clock_flip') for op in ops)


def apply(frame: np.ndarray, ops: Orientation) -> np.ndarray:
    """Turn one frame upright.

    Args:
        frame: ``[H, W, C]`` (any dtype).
        ops: :func:`orientation`'s operations.

    Returns:
        ``[H, W, C]``, or ``[W, H, C]`` when :func:`swaps_sides`; a contiguous copy unless
        ``ops`` is empty (then ``frame`` itself).
    """
    for op in ops:
        if op == 'clock':  # 90 degrees clockwise
            frame = frame.transpose(1, 0, 2)[:, ::-1]
        elif op == 'cclock':  # 90 degrees counter-clockwise
            frame = frame.transpose(1, 0, 2)[::-1]
        elif op == 'cclock_flip':  # the plain transpose: counter-clockwise, then upside down
            frame = frame.transpose(1, 0, 2)
        elif op == 'clock_flip':  # clockwise, then upside down: the anti-transpose
            frame = frame.transpose(1, 0, 2)[::-1, ::-1]
        elif op == 'hflip':
            frame = frame[:, ::-1]
        elif op == 'vflip':
            frame = frame[::-1]
        else:
            raise ValueError(f'unknown orientation step {op!r}')
    return np.ascontiguousarray(frame) if ops else frame
