"""A :class:`TestProtocol` as a pipeline: video file or decoded frames -> model input.

``VideoTransform(protocol)`` is what a zoo entry's ``transforms()`` returns: called on all
decoded frames of a video it samples, resizes, crops and normalises them as MMAction2's test
pipeline and ``ActionDataPreprocessor`` do; :func:`load_video` does the same from a file,
decoding only the sampled frames.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from . import sampling, transforms
from .protocol import TestProtocol
from .reader import VideoReader


class VideoTransform:
    """MMAction2's test-time pipeline for one protocol.

    Args:
        protocol: sampling, resize, crops and normalisation (default: the R50 Kinetics-400
            protocol, 8 segments x 10 crops).

    Example:
        >>> transform = VideoTransform(TestProtocol(crop='center'))
        >>> views = transform(np.zeros((40, 240, 320, 3), np.uint8))  # [1, 8, 3, 224, 224]
    """

    def __init__(self, protocol: TestProtocol | None = None) -> None:
        self.protocol = protocol or TestProtocol()

    def frame_indices(self, num_frames: int) -> np.ndarray:
        """The frames to read from a video of ``num_frames`` frames, in stacking order.

        Returns:
            ``[views_in_time * num_segments]`` int64 indices (repeats for short videos).
        """
        p = self.protocol
        if p.dense:
            return sampling.dense_sample_frames(
                num_frames, p.num_clips, p.clip_len, p.frame_interval, p.sample_range,
                p.num_test_clips)
        return sampling.sample_frames(num_frames, p.num_clips, p.clip_len, p.frame_interval,
                                      p.twice_sample)

    def from_sampled(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Resize, crop, normalise and cut into views frames already sampled.

        Args:
            frames: ``[len(frame_indices), H, W, C]`` uint8 (grey, RGB or RGBA; see
                :func:`transforms.as_rgb`).

        Returns:
            ``[V, T, 3, crop_size, crop_size]`` float32 views.
        """
        p = self.protocol
        rgb = transforms.resize_short_side(transforms.as_rgb(frames), p.resize_short)
        crops = transforms.crop(rgb, p.crop, p.crop_size)
        return transforms.to_views(transforms.normalize(crops, p.mean, p.std), p.num_segments)

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Sample and transform all decoded frames of one video.

        Args:
            frames: ``[F, H, W, C]`` uint8, every frame of the video in order.

        Returns:
            ``[V, T, 3, crop_size, crop_size]`` float32 views.
        """
        rgb = transforms.as_rgb(frames)
        return self.from_sampled(rgb[self.frame_indices(rgb.shape[0])])

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.protocol})'


def read_sampled(path: str | os.PathLike, protocol: TestProtocol | None = None,
                 threads: int = 0, autorotate: bool = True) -> np.ndarray:
    """Decode only the frames a protocol samples from a video file, in stacking order.

    :func:`load_video`'s first half (``VideoTransform(protocol).from_sampled`` is the second),
    apart so that ``tsmnet predict`` can time decoding and transforms one by one. The file is
    opened and indexed once.

    Args:
        path: the video file (any container and codec FFmpeg reads).
        protocol: the test protocol (default: :class:`TestProtocol`'s defaults).
        threads: decoding threads (0: FFmpeg's choice).
        autorotate: turn frames upright by the rotation metadata (see :mod:`.rotation`).

    Returns:
        ``[len(frame_indices), H, W, 3]`` uint8 RGB frames.

    Raises:
        errors.VideoError: when the file cannot be read.
    """
    with VideoReader(path, threads=threads, autorotate=autorotate) as video:
        return video.read(VideoTransform(protocol).frame_indices(len(video)))


def load_video(path: str | os.PathLike, protocol: TestProtocol | None = None,
               threads: int = 0) -> torch.Tensor:
    """Read a video file as the views a recognizer takes, as MMAction2's test pipeline does.

    Args:
        path: the video file (any container and codec FFmpeg reads).
        protocol: the test protocol (default: :class:`TestProtocol`'s defaults).
        threads: decoding threads (0: FFmpeg's choice).

    Returns:
        ``[V, T, 3, crop_size, crop_size]`` float32 views.

    Raises:
        errors.VideoError: when the file cannot be read.
    """
    return VideoTransform(protocol).from_sampled(read_sampled(path, protocol, threads))
