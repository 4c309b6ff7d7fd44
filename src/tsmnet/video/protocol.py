"""The test-time protocol of a zoo entry: how MMAction2's test pipeline samples and crops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TestProtocol:
    """MMAction2's test pipeline of a TSM config, as data.

    Args:
        num_clips: segments sampled over the video (``SampleFrames(num_clips=...)``).
        clip_len: frames per segment (1 for TSM).
        frame_interval: the step between the frames of a segment.
        twice_sample: also sample the segments' starts (``SampleFrames(twice_sample=True)``),
            doubling the clips.
        dense: dense sampling (``DenseSampleFrames``) instead of uniform segments.
        num_test_clips: clips drawn by dense sampling (ignored otherwise).
        resize_short: the short side after ``Resize(scale=(-1, resize_short))``.
        crop: ``'center'`` (``CenterCrop``), ``'three'`` (``ThreeCrop``) or ``'ten'``
            (``TenCrop``).
        crop_size: the side of each square crop.
        mean: per-channel RGB mean on the 0-255 scale (``ActionDataPreprocessor``).
        std: per-channel RGB std on the 0-255 scale.
        average_clips: how views are averaged: ``'prob'``, ``'score'`` or None.
    """

    num_clips: int = 8
    clip_len: int = 1
    frame_interval: int = 1
    twice_sample: bool = False
    dense: bool = False
    num_test_clips: int = 1
    resize_short: int = 256
    crop: Literal['center', 'three', 'ten'] = 'ten'
    crop_size: int = 224
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    average_clips: Literal['prob', 'score'] | None = 'prob'
