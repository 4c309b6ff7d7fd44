"""``VideoDataset``: a torch ``Dataset`` of video files that decodes only each item's sampled
frames.

Memory stays flat whatever the number and length of the videos: an item opens its file, reads
the frames it samples and closes it; the only thing kept per video is its frame count (one
``int32`` in shared memory, probed on first use). Randomness is a function of ``(seed, epoch,
index)``, so an item is the same whichever worker, process or machine reads it, and
:meth:`VideoDataset.set_epoch` (as ``DistributedSampler.set_epoch``) draws new augmentations
each epoch, also in persistent DataLoader workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from ..video import VideoError, probe
from . import sources
from .pipelines import TrainPipeline
from .sources import VideoList

LOGGER = logging.getLogger(__name__)


class Pipeline(Protocol):
    def __call__(self, rng: np.random.Generator, path: str | os.PathLike,
                 num_frames: int) -> torch.Tensor: ...


class VideoDataset(Dataset):
    """Video files and labels as ``(clip, label)`` items.

    Build it from a :class:`~tsmnet.data.sources.VideoList`, or with :meth:`from_folder`
    (one sub-folder per class), :meth:`from_annotations` (MMAction2's ``path label`` list) or
    :meth:`from_csv`.

    Args:
        videos: the files, labels and class names.
        pipeline: file -> clip: a :class:`TrainPipeline` (random, MMAction2's TSM
            augmentation), an :class:`EvalPipeline` (deterministic), or any callable
            ``(rng, path, num_frames) -> tensor``. Defaults to ``TrainPipeline()``.
        seed: the base of every item's generator (``np.random.default_rng((seed, epoch,
            index))``). Defaults to None: drawn from ``torch.initial_seed()`` at construction,
            so ``torch.manual_seed`` decides it.
        on_error: a video that cannot be read (missing, damaged, too few frames): ``'raise'``
            its :class:`~tsmnet.video.VideoError`, or ``'skip'`` it: the item is then the next
            readable one (index + 1, + 2..., wrapping around), the video is counted in
            :attr:`skipped` and a warning names it. Defaults to ``'raise'``.

    Items:
        ``(clip, label)``: ``clip`` ``[T, 3, S, S]`` float32 normalised (``[V, T, 3, S, S]``
        for a multi-view test pipeline), ``label`` an ``int``. The default collate stacks
        them to ``[N, T, 3, S, S]`` and ``[N]``.
    """

    def __init__(self, videos: VideoList, pipeline: Pipeline | None = None,
                 seed: int | None = None,
                 on_error: Literal['raise', 'skip'] = 'raise') -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if len(videos) == 0:
            raise ValueError('VideoDataset: videos is empty')
        self.videos = videos
        self.pipeline = pipeline if pipeline is not None else TrainPipeline()
        self.seed = int(torch.initial_seed() % 2 ** 63) if seed is None else int(seed)
        self.on_error = on_error
        # shared with DataLoader workers (fork or spawn): what they learn, everyone sees
        self._num_frames = torch.full((len(videos),), -1, dtype=torch.int32).share_memory_()
        self._failed = torch.zeros(len(videos), dtype=torch.bool).share_memory_()
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    @classmethod
    def from_folder(cls, root: str | os.PathLike, **kwargs) -> VideoDataset:
        """Videos in ``root/CLASS/...`` (classes: sorted sub-folder names)."""
        return cls(sources.from_folder(root), **kwargs)

    @classmethod
    def from_annotations(cls, ann_file: str | os.PathLike, data_prefix: str | os.PathLike = '',
                         classes: Sequence[str] | str | os.PathLike | None = None,
                         **kwargs) -> VideoDataset:
        """MMAction2's annotation list (``path label`` lines under ``data_prefix``)."""
        return cls(sources.from_annotations(ann_file, data_prefix, classes), **kwargs)

    @classmethod
    def from_csv(cls, csv_file: str | os.PathLike, data_prefix: str | os.PathLike = '',
                 classes: Sequence[str] | str | os.PathLike | None = None,
                 **kwargs) -> VideoDataset:
        """A CSV with ``path`` and ``label`` columns (labels as indices or class names)."""
        return cls(sources.from_csv(csv_file, data_prefix, classes), **kwargs)

    @property
    def classes(self) -> list[str]:
        """Class names; label ``k`` is ``classes[k]``."""
        return list(self.videos.classes)

    @property
    def labels(self) -> list[int]:
        return list(self.videos.labels)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Draw new augmentations for ``epoch`` (call before iterating, as for
        ``DistributedSampler``; persistent workers see it)."""
        self._epoch[0] = int(epoch)

    @property
    def skipped(self) -> list[Path]:
        """The videos skipped so far because they could not be read (``on_error='skip'``)."""
        return [self.videos.paths[i] for i in torch.nonzero(self._failed).flatten().tolist()]

    def __len__(self) -> int:
        return len(self.videos)

    def num_frames(self, index: int) -> int:
        """Frames of video ``index`` (probed from its packets once, then remembered)."""
        count = int(self._num_frames[index])
        if count < 0:
            count = probe(self.videos.paths[index]).num_frames
            self._num_frames[index] = count
        return count

    def probe_all(self) -> None:
        """Count every video's frames now (else each is probed when first read)."""
        for i in range(len(self)):
            self._load_count(i)

    def _load_count(self, index: int) -> None:
        try:
            self.num_frames(index)
        except VideoError as err:
            if self.on_error == 'raise':
                raise
            self._skip(index, err)

    def _skip(self, index: int, err: Exception) -> None:
        if not bool(self._failed[index]):
            self._failed[index] = True
            LOGGER.warning('skipping video %s (%s); %d skipped so far', self.videos.paths[index],
                           err, int(self._failed.sum()))

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index`` in the current epoch."""
        return np.random.default_rng((self.seed, self.epoch, index))

    def load(self, index: int) -> torch.Tensor:
        """The clip of video ``index``, errors raised (no skipping)."""
        return self.pipeline(self.rng(index), self.videos.paths[index], self.num_frames(index))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} videos')
        index %= len(self)
        for k in range(len(self)):
            i = (index + k) % len(self)
            if self.on_error == 'skip' and bool(self._failed[i]):
                continue
            try:
                return self.load(i), self.videos.labels[i]
            except VideoError as err:
                if self.on_error == 'raise':
                    raise
                self._skip(i, err)
        raise VideoError(f'VideoDataset: none of the {len(self)} videos can be read')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({len(self)} videos, {len(self.classes)} classes, '
                f'pipeline={self.pipeline!r}, on_error={self.on_error!r})')

