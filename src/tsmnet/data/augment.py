"""MMAction2's TSM training augmentations, each a ``draw`` (the random choice) and an ``apply``
(the pure transform of that choice).

Keeping the draws apart lets a test give MMAction2's own transform and ours the same choice and
compare the frames to the bit, and makes every clip reproducible from its generator. Frames
are ``[F, H, W, 3]`` uint8 RGB numpy arrays. The transforms follow MMAction2 1.2.0:
``SampleFrames`` (train mode), ``MultiScaleCrop`` and ``Flip``; resizing is
:func:`tsmnet.video.transforms.resize` (OpenCV's bilinear).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Rng = np.random.Generator


def draw_frame_indices(rng: Rng, num_frames: int, num_clips: int) -> np.ndarray:
    """``SampleFrames(clip_len=1, frame_interval=1, num_clips=num_clips)`` in train mode: one
    frame at a random place in each of ``num_clips`` equal segments (TSN/TSM's sampling).

    A video with fewer frames than ``num_clips`` gives evenly spread indices, as MMAction2's.

    Returns:
        ``[num_clips]`` int64 frame indices, in order.
    """
    if num_frames < 1 or num_clips < 1:
        raise ValueError(f'num_frames and num_clips must be >= 1, got {num_frames} and '
                         f'{num_clips}')
    interval = num_frames // num_clips
    if interval > 0:
        offsets = np.arange(num_clips) * interval + rng.integers(interval, size=num_clips)
    else:
        offsets = np.around(np.arange(num_clips) * (num_frames / num_clips))
    return np.mod(offsets, num_frames).astype(np.int64)


@dataclass(frozen=True)
class CropBox:
    """A crop: ``frames[:, y:y + height, x:x + width]``."""

    x: int
    y: int
    width: int
    height: int


def multi_scale_crop_candidates(height: int, width: int, input_size: int | Sequence[int] = 224,
                                scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
                                max_wh_scale_gap: int = 1, num_fixed_crops: int = 13
                                ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The sizes and offsets ``MultiScaleCrop(random_crop=False)`` chooses from.

    Args:
        height: frame height.
        width: frame width.
        input_size: the network's input size, ``int`` or ``(w, h)``: a crop side within 2
            pixels of it snaps to it.
        scales: crop sides as fractions of the short side.
        max_wh_scale_gap: the largest gap between the width's and the height's scale index.
        num_fixed_crops: 5 (corners and centre) or 13 (also edge centres and quarters).

    Returns:
        ``(sizes, steps)``: ``sizes`` the ``(w, h)`` candidates, in MMAction2's order;
        ``steps`` the offsets in quarter steps ``(x / w_step, y / h_step)``, in MMAction2's
        order (multiply by ``(W - w) // 4`` and ``(H - h) // 4``).
    """
    if num_fixed_crops not in (5, 13):
        raise ValueError(f'num_fixed_crops must be 5 or 13, got {num_fixed_crops}')
    target = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    base = min(height, width)
    sides = [int(base * s) for s in scales]
    sizes = []
    for i, h in enumerate(sides):
        for j, w in enumerate(sides):
            if abs(i - j) <= max_wh_scale_gap:
                size = [w, h]
                for k in range(2):
                    if abs(size[k] - target[k]) < 3:
                        size[k] = target[k]
                sizes.append((size[0], size[1]))
    steps = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
    if num_fixed_crops == 13:
        steps += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
    return sizes, steps


def draw_multi_scale_crop(rng: Rng, height: int, width: int,
                          input_size: int | Sequence[int] = 224,
                          scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
                          max_wh_scale_gap: int = 1, num_fixed_crops: int = 13) -> CropBox:
    """``MultiScaleCrop(input_size, scales, random_crop=False, max_wh_scale_gap,
    num_fixed_crops)``: a size uniformly among :func:`multi_scale_crop_candidates`' sizes, then
    an offset uniformly among its fixed offsets.

    Args:
        rng: the generator.
        height: frame height (after the short-side resize).
        width: frame width.
        input_size, scales, max_wh_scale_gap, num_fixed_crops: as in
            :func:`multi_scale_crop_candidates`.

    Returns:
        The crop box (apply with :func:`apply_crop`).
    """
    sizes, steps = multi_scale_crop_candidates(height, width, input_size, scales,
                                               max_wh_scale_gap, num_fixed_crops)
    w, h = sizes[int(rng.integers(len(sizes)))]
    sx, sy = steps[int(rng.integers(len(steps)))]
    return CropBox(sx * ((width - w) // 4), sy * ((height - h) // 4), w, h)


def apply_crop(frames: np.ndarray, box: CropBox) -> np.ndarray:
    """``frames[:, y:y + h, x:x + w]``: ``[F, h, w, C]`` (a view)."""
    _, height, width, _ = frames.shape
    if box.x < 0 or box.y < 0 or box.x + box.width > width or box.y + box.height > height:
        raise ValueError(f'crop {box} does not fit in frames of {height}x{width}')
    return frames[:, box.y:box.y + box.height, box.x:box.x + box.width]


def draw_flip(rng: Rng, flip_ratio: float = 0.5) -> bool:
    """``Flip(flip_ratio)``: whether to mirror the clip (one choice for all its frames)."""
    if not 0 <= flip_ratio <= 1:
        raise ValueError(f'flip_ratio must be in [0, 1], got {flip_ratio}')
    return bool(rng.random() < flip_ratio)


def apply_flip(frames: np.ndarray, flip: bool) -> np.ndarray:
    """Mirror ``[F, H, W, C]`` frames left to right when ``flip``."""
    return frames[:, :, ::-1] if flip else frames
