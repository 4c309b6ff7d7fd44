"""Decoding video files with PyAV (FFmpeg's libraries, maintained, wheels for every platform).

MMAction2 reads videos with decord 0.6.0 (last released in 2021, no wheels for current
Pythons on some platforms). PyAV gives the same RGB frames here: both convert with FFmpeg's
swscale, and on the videos the tests write the frames are equal to the bit. Like decord,
the frame count comes from the container's packets (no decoding), so sampling indices are
the ones MMAction2 computes; then each sampled frame is decoded from the keyframe before it
(:class:`~.reader.VideoReader`), and only the sampled frames are converted to RGB.

Two differences from decord, both ffmpeg's behaviour: frames are turned upright by the
stream's rotation metadata (:mod:`.rotation`; ``autorotate=False`` gives decord's frames), and
a frame that cannot be decoded raises :class:`~.errors.DamagedVideoError` (the policy in
:mod:`.errors`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .errors import DamagedVideoError, VideoError
from .reader import VideoInfo, VideoReader

__all__ = ['DamagedVideoError', 'VideoError', 'VideoInfo', 'probe', 'read_frames']


def probe(path: str | os.PathLike, autorotate: bool = True) -> VideoInfo:
    """Count the frames of a video from its packets, and read its rate and displayed size.

    Demuxes the whole file (no decoding) and, for the rotation metadata, decodes its first
    keyframe.

    Args:
        path: the video file.
        autorotate: report the size frames are shown at (rotation metadata applied, as
            :func:`read_frames` does); False: the size as stored.

    Raises:
        VideoError: when the file is missing, is not a video or holds no frames;
            :class:`DamagedVideoError` when its container breaks off or its first keyframe
            does not decode.
    """
    with VideoReader(path, threads=1, autorotate=autorotate) as video:
        return video.info


def read_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None,
                threads: int = 0, autorotate: bool = True) -> np.ndarray:
    """Decode a video's frames ``indices`` (all when None) as RGB.

    Each run of wanted frames is decoded from the keyframe at or before it (decord's
    ``'accurate'`` mode), so the cost follows the samples, not the video's length. Grey,
    RGBA and any other pixel format become RGB (alpha dropped). Repeated indices repeat frames.

    Args:
        path: the video file.
        indices: frame numbers in display order, any order, repeats allowed.
        threads: decoding threads (0: FFmpeg's choice, frame and slice threads).
        autorotate: turn frames upright by the rotation metadata, as ffmpeg does (see
            :mod:`tsmnet.video.rotation`); False gives the frames as stored, like decord.

    Returns:
        ``[len(indices), H, W, 3]`` uint8 RGB frames in the order of ``indices`` (the
        displayed H and W: :func:`probe`'s).

    Raises:
        VideoError: when the file cannot be read or has fewer frames than asked for;
            :class:`DamagedVideoError` when a wanted frame cannot be decoded.
    """
    with VideoReader(path, threads=threads, autorotate=autorotate) as video:
        return video.read(indices)
