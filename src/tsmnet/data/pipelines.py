"""A video file to a normalised clip: MMAction2's TSM training pipeline and a zoo entry's
validation and test pipelines.

Training (``tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_*``'s ``train_pipeline``):
``SampleFrames(clip_len=1, frame_interval=1, num_clips=T)``, ``Resize(scale=(-1, 256))``,
``MultiScaleCrop(224, (1, 0.875, 0.75, 0.66), random_crop=False, max_wh_scale_gap=1,
num_fixed_crops=13)``, ``Resize((224, 224), keep_ratio=False)``, ``Flip(flip_ratio=0.5)``, then
``ActionDataPreprocessor``'s normalisation. Validation: test-mode sampling, ``Resize(-1, 256)``,
``CenterCrop(224)``. Test: the entry's whole :class:`~tsmnet.video.TestProtocol` (its crops).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import get_worker_info

from ..video import TestProtocol, VideoTransform, read_frames
from ..video import transforms as vt
from . import augment

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def read_indices(path: str | os.PathLike, indices: np.ndarray) -> np.ndarray:
    """Decode frames ``indices`` of a video (each distinct frame once): ``[len, H, W, 3]``.

    In a DataLoader worker the decoder gets one thread (as decord's ``num_threads=1`` in
    MMAction2's workers): the workers already decode in parallel, and FFmpeg's choice (a
    thread per core in each worker) would take the cores from the training step.
    """
    unique, inverse = np.unique(indices, return_inverse=True)
    threads = 1 if get_worker_info() is not None else 0
    return vt.as_rgb(read_frames(path, unique, threads=threads))[inverse.reshape(-1)]


def _finish(frames: np.ndarray, mean, std, normalize: bool) -> torch.Tensor:
    """``[..., H, W, 3]`` uint8 to ``[..., 3, H, W]``: normalised float32, or uint8."""
    if normalize:
        return vt.normalize(frames, mean, std)
    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3)


@dataclass(frozen=True)
class TrainPipeline:
    """MMAction2's TSM training pipeline.

    Args:
        num_segments: frames per clip ``T`` (``SampleFrames(num_clips=T)``).
        resize_short: the short side before cropping. Defaults to 256.
        input_size: the output side. Defaults to 224.
        scales: ``MultiScaleCrop``'s scales. Defaults to ``(1, 0.875, 0.75, 0.66)``.
        max_wh_scale_gap: ``MultiScaleCrop``'s. Defaults to 1.
        num_fixed_crops: ``MultiScaleCrop``'s, 5 or 13. Defaults to 13.
        flip_ratio: ``Flip``'s probability; 0 for classes where left and right matter
            (Something-Something). Defaults to 0.5.
        mean: RGB mean on the 0-255 scale. Defaults to MMAction2's ImageNet mean.
        std: RGB std on the 0-255 scale. Defaults to MMAction2's ImageNet std.
        normalize: return normalised float32 clips; False: uint8 clips (the same layout) for
            a :class:`~tsmnet.data.ClipNormalizer` to normalise a batch at a time, as
            ``tsmnet finetune`` does. Defaults to True.
    """

    num_segments: int = 8
    resize_short: int = 256
    input_size: int = 224
    scales: tuple[float, ...] = (1, 0.875, 0.75, 0.66)
    max_wh_scale_gap: int = 1
    num_fixed_crops: int = 13
    flip_ratio: float = 0.5
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    normalize: bool = True

    def __post_init__(self) -> None:
        for name in ('num_segments', 'resize_short', 'input_size'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'TrainPipeline.{name} must be an integer >= 1, got {value!r}')
        if not 0 <= self.flip_ratio <= 1:
            raise ValueError(f'TrainPipeline.flip_ratio must be in [0, 1], got {self.flip_ratio}')

    def frame_indices(self, rng: np.random.Generator, num_frames: int) -> np.ndarray:
        """Draw the frames to read: ``[T]`` int64 indices."""
        return augment.draw_frame_indices(rng, num_frames, self.num_segments)

    def from_sampled(self, rng: np.random.Generator, frames: np.ndarray) -> torch.Tensor:
        """Resize, crop, resize, flip and normalise sampled frames ``[T, H, W, 3]`` uint8.

        Returns:
            ``[T, 3, input_size, input_size]`` float32 (uint8 without ``normalize``).
        """
        frames = vt.resize_short_side(frames, self.resize_short)
        box = augment.draw_multi_scale_crop(rng, frames.shape[1], frames.shape[2],
                                            self.input_size, self.scales,
                                            self.max_wh_scale_gap, self.num_fixed_crops)
        frames = vt.resize(augment.apply_crop(frames, box), self.input_size, self.input_size)
        frames = augment.apply_flip(frames, augment.draw_flip(rng, self.flip_ratio))
        return _finish(frames, self.mean, self.std, self.normalize)

    def __call__(self, rng: np.random.Generator, path: str | os.PathLike,
                 num_frames: int) -> torch.Tensor:
        """One training clip of a video of ``num_frames`` frames: ``[T, 3, S, S]``."""
        frames = read_indices(path, self.frame_indices(rng, num_frames))
        return self.from_sampled(rng, frames)


@dataclass(frozen=True)
class EvalPipeline:
    """A zoo entry's test protocol as a dataset pipeline (deterministic).

    Args:
        protocol: sampling, resize, crops and normalisation (:class:`TestProtocol`).
        squeeze: return ``[T, 3, S, S]`` when the protocol has a single view (validation)
            rather than ``[1, T, 3, S, S]``. Defaults to True.
        normalize: as :class:`TrainPipeline`'s (False: uint8 views). Defaults to True.
    """

    protocol: TestProtocol
    squeeze: bool = True
    normalize: bool = True

    @classmethod
    def validation(cls, protocol: TestProtocol | None = None,
                   num_segments: int | None = None, normalize: bool = True) -> EvalPipeline:
        """MMAction2's ``val_pipeline``: the protocol's sampling, one centre crop."""
        protocol = (protocol or TestProtocol()).with_views(clips=1, crops=1)
        if num_segments is not None:
            protocol = replace(protocol, num_clips=num_segments // protocol.clip_len)
        return cls(protocol, normalize=normalize)

    def frame_indices(self, num_frames: int) -> np.ndarray:
        """The frames to read, in stacking order."""
        return VideoTransform(self.protocol).frame_indices(num_frames)

    def from_sampled(self, frames: np.ndarray) -> torch.Tensor:
        """Resize, crop, normalise: ``[V, T, 3, S, S]`` float32 (``[T, 3, S, S]`` for a single
        view with ``squeeze``; uint8 without ``normalize``)."""
        p = self.protocol
        frames = vt.resize_short_side(vt.as_rgb(frames), p.resize_short)
        views = vt.to_views(_finish(vt.crop(frames, p.crop, p.crop_size), p.mean, p.std,
                                    self.normalize), p.num_segments)
        return views[0] if self.squeeze and views.shape[0] == 1 else views

    def __call__(self, rng: np.random.Generator | None, path: str | os.PathLike,
                 num_frames: int) -> torch.Tensor:
        """The views of a video of ``num_frames`` frames (``rng`` is unused)."""
        return self.from_sampled(read_indices(path, self.frame_indices(num_frames)))

