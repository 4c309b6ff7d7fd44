"""Calibration clips for int8: the user's tensors or a folder of videos.

Static int8 fixes the range of every activation from calibration data. For the whole-clip
model the readers give clips; for the online step they stream each clip frame by frame and
give every step's inputs with the buffers that eager PyTorch computed from the frames before,
so the buffer inputs see the ranges they will see in use (zeros at the first frame only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..video import (
    VIDEO_EXTENSIONS,
    VideoError,
    VideoReader,
    find_videos,
    sample_frames,
    single_view_protocol,
    transforms,
)

__all__ = ['VIDEO_SUFFIXES', 'calibration_clips', 'normalise_unit_clips', 'smooth_clips',
           'step_feeds']

VIDEO_SUFFIXES = VIDEO_EXTENSIONS  # the extensions a calibration folder is searched for


def smooth_clips(n: int, num_frames: int, channels: int, size: tuple[int, int],
                 seed: int = 0) -> torch.Tensor:
    """Smooth random clips ``[n, T, C, H, W]`` (noise at a quarter of the resolution,
    upsampled; unit scale): well-conditioned inputs to check a file on."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.randn(n * num_frames, channels, max(size[0] // 4, 1), max(size[1] // 4, 1),
                      generator=gen)
    x = torch.nn.functional.interpolate(low, size=size, mode='bilinear', align_corners=False)
    return x.unflatten(0, (n, num_frames))


def _read_folder(folder: Path, num_frames: int, size: int) -> list[torch.Tensor]:
    """Clips ``[1, T, 3, size, size]`` in ``[0, 1]`` from the videos under ``folder`` (searched
    recursively, so the class-folder tree ``tsmnet finetune`` takes works too): ``T`` frames
    sampled as MMAction2's test pipeline does (:func:`tsmnet.video.sample_frames`), read with
    :mod:`tsmnet.video` (PyAV), each one view of the center-crop protocol (short side to
    ``size * 256 / 224``, a ``size`` x ``size`` center crop: what ``tsmnet predict`` and
    ``tsmnet stream`` read)."""
    try:
        files = find_videos([folder], VIDEO_SUFFIXES)
    except ValueError:
        raise ValueError(f"calibration folder {folder} holds no video "
                         f"({', '.join(VIDEO_SUFFIXES)}, in it or in its subfolders)") from None
    protocol = single_view_protocol(size)
    clips = []
    for path in files:
        try:
            with VideoReader(path) as video:
                frames = video.read(sample_frames(len(video), num_frames))
        except VideoError as err:
            raise ValueError(f'calibration video {path} cannot be decoded: {err}') from err
        short = transforms.resize_short_side(frames, protocol.resize_short)
        crops = torch.from_numpy(np.ascontiguousarray(
            transforms.center_crop(short, protocol.crop_size)[0]))
        clips.append((crops.permute(0, 3, 1, 2).float() / 255)[None])
    return clips


def normalise_unit_clips(clips: torch.Tensor) -> torch.Tensor:
    """Frames in ``[0, 1]`` (decoded video) normalised as MMAction2's TSM configs do (ImageNet
    mean and std on the 0-255 scale): the input of a tsmnet backbone or Recognizer."""
    mean = clips.new_tensor((123.675, 116.28, 103.53)).view(3, 1, 1)
    std = clips.new_tensor((58.395, 57.12, 57.375)).view(3, 1, 1)
    return (clips * 255 - mean) / std


def calibration_clips(calibration: Any, shape: tuple[int, ...], *, needs_t: bool,
                      unit_to_input: Any) -> list[torch.Tensor]:
    """The calibration data as a list of clips ``[N, T, C, H, W]`` in the model's input space.

    Args:
        calibration: A folder of videos (str or Path), a tensor ``[N, T, C, H, W]``, or an
            iterable of such tensors.
        shape: ``(T, C, H, W)`` the model takes.
        needs_t: ``T`` must equal ``shape[0]`` (the whole-clip model); the step takes any.
        unit_to_input: Maps clips in ``[0, 1]`` (demo, video) to the model's input.

    Raises:
        ValueError: Missing, empty, or of the wrong shape (the message names what was
            expected).
    """
    t, c, h, w = shape
    if calibration is None:
        raise ValueError('calibration is missing: int8 needs clips [N, T, C, H, W] (tensors, '
                         'or a folder of videos) to fix the ranges of the activations')
    if isinstance(calibration, (str, Path)):
        folder = Path(calibration)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f'calibration must be a folder of videos, got the file {folder}')
        if not folder.is_dir():
            raise ValueError(f'calibration folder not found: {folder}')
        clips = [unit_to_input(clip) for clip in _read_folder(folder, t, h)]
    elif isinstance(calibration, torch.Tensor):
        clips = [calibration]
    elif isinstance(calibration, Iterable):
        clips = list(calibration)
    else:
        raise TypeError(f'calibration must be a folder of videos, a tensor [N, T, C, H, W] '
                        f'or an iterable of them, got {type(calibration).__name__}')
    if not clips:
        raise ValueError('calibration is empty: expected at least one clip [N, T, C, H, W]')
    for i, clip in enumerate(clips):
        expected = f'[N, {t if needs_t else "T"}, {c}, {h}, {w}]'
        if not isinstance(clip, torch.Tensor):
            raise TypeError(f'calibration clip {i} must be a tensor {expected}, got '
                            f'{type(clip).__name__}')
        if (clip.dim() != 5 or clip.shape[0] < 1 or clip.shape[1] < 1
                or tuple(clip.shape[2:]) != (c, h, w) or (needs_t and clip.shape[1] != t)):
            raise ValueError(f'calibration clip {i} must be {expected} (the example\'s frame '
                             f'size), got shape {tuple(clip.shape)}')
        if not clip.is_floating_point():
            raise TypeError(f'calibration clip {i} must be floating point, got {clip.dtype}')
    return [clip.float().contiguous() for clip in clips]


def step_feeds(step: nn.Module, clips: Iterable[torch.Tensor], zero_buffers: Any,
               num_outputs: int = 1) -> Iterator[list[torch.Tensor]]:
    """The inputs of every step while streaming each clip: ``[frames, *buffers]``, with the
    buffers eager PyTorch computed from the clip's previous frames (zeros at its first)."""
    for clip in clips:
        buffers = zero_buffers(clip[:, 0])
        for t in range(clip.shape[1]):
            frames = clip[:, t].contiguous()
            yield [frames, *buffers]
            with torch.no_grad():
                out = step(frames, *buffers)
            buffers = list(out[num_outputs:])
