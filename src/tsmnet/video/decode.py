"""Decoding video files with PyAV (FFmpeg's libraries, maintained, wheels for every platform).

MMAction2 reads videos with decord 0.6.0 (last released in 2021, no wheels for current
Pythons on some platforms). PyAV gives the same RGB frames here: both convert with FFmpeg's
swscale, and on the videos the tests write the frames are equal to the bit. Like decord,
the frame count comes from the container's packets (no decoding), so sampling indices are
the ones MMAction2 computes; then only the sampled frames are converted to RGB.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # an extra (tsmnet[video]): everything but reading files works without it
    import av
except ImportError:  # pragma: no cover - exercised where PyAV is not installed
    av = None


class VideoError(ValueError):
    """A video that cannot be read: missing, not a video, no video stream, or truncated."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` finds out about a video without decoding it.

    Args:
        num_frames: video packets in the file (decord's ``len(VideoReader)``).
        fps: average frame rate (0.0 when the container does not say).
        height: frame height in pixels.
        width: frame width in pixels.
    """

    num_frames: int
    fps: float
    height: int
    width: int


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    if av is None:
        raise VideoError("reading video files needs PyAV: pip install 'tsmnet[video]'")
    p = Path(path)
    if not p.exists():
        raise VideoError(f'video {str(p)!r}: no such file')
    if not p.is_file():
        raise VideoError(f'video {str(p)!r}: not a file')
    try:
        container = av.open(str(p), mode='r')
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoError(f'video {str(p)!r}: cannot be read as a video ({err})') from None
    if not container.streams.video:
        container.close()
        raise VideoError(f'video {str(p)!r}: has no video stream')
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Count the frames of a video from its packets and read its size and frame rate.

    Raises:
        VideoError: when the file is missing, is not a video or holds no frames.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            count = sum(1 for packet in container.demux(stream) if packet.size > 0)
        except (av.FFmpegError, OSError) as err:
            raise VideoError(f'video {str(path)!r}: is damaged ({err})') from None
        rate = stream.average_rate or stream.guessed_rate
        height, width = stream.codec_context.height, stream.codec_context.width
    if count == 0 or height <= 0 or width <= 0:
        raise VideoError(f'video {str(path)!r}: holds no frames')
    return VideoInfo(count, float(rate) if rate else 0.0, height, width)


def read_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None,
                threads: int = 0) -> np.ndarray:
    """Decode a video's frames ``indices`` (all when None) as RGB.

    Frames are decoded in order from the start (decord's ``'accurate'`` mode); grey, RGBA and
    any other pixel format become RGB (alpha dropped). Repeated indices repeat frames.

    Args:
        path: the video file.
        indices: frame numbers in display order, any order, repeats allowed.
        threads: decoding threads (0: FFmpeg's choice, frame and slice threads).

    Returns:
        ``[len(indices), H, W, 3]`` uint8 RGB frames in the order of ``indices``.

    Raises:
        VideoError: when the file cannot be read or holds fewer frames than asked for.
    """
    wanted = None if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if wanted is not None and (wanted.size == 0 or wanted.min() < 0):
        raise VideoError(f'frame indices must be non-negative and not empty, got {indices!r}')
    needed = None if wanted is None else set(wanted.tolist())
    last = None if wanted is None else int(wanted.max())
    frames: dict[int, np.ndarray] = {}
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        stream.codec_context.thread_count = threads
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if needed is None or index in needed:
                    frames[index] = frame.to_ndarray(format='rgb24')
                if last is not None and index >= last:
                    break
        except (av.FFmpegError, OSError) as err:
            if not frames:
                raise VideoError(f'video {str(path)!r}: cannot be decoded ({err})') from None
            # a damaged tail: keep what decoded; a missing frame is reported below
    if not frames:
        raise VideoError(f'video {str(path)!r}: holds no frames')
    if wanted is None:
        return np.stack([frames[i] for i in range(len(frames))])
    missing = sorted(needed - frames.keys())
    if missing:
        raise VideoError(f'video {str(path)!r}: frame {missing[0]} was asked for but only '
                         f'{index + 1} frames could be decoded')
    return np.stack([frames[i] for i in wanted.tolist()])
