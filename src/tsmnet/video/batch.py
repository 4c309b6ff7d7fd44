"""Scoring many videos: decoding in worker processes while the model runs, bad files as rows.

:func:`predict_videos` reads each video with a :class:`~.protocol.TestProtocol` (the sampled
frames decoded, resized, cropped, normalised: :class:`VideoFiles`) in the worker processes of
a ``torch.utils.data.DataLoader``, so the next videos decode while the model scores this one;
it yields one :class:`VideoResult` per video, in order, as soon as it is scored. A video that
cannot be read (missing, not a video, damaged: any exception while it is read) becomes a
result with its ``error`` and the run goes on.

The model is any callable ``views [V, T, 3, H, W] -> scores [num_classes]`` (``tsmnet
predict``'s ``Predictor.scores``), so this module needs nothing of tsmnet's but the reader.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .pipeline import VideoTransform, read_sampled
from .protocol import TestProtocol

__all__ = ['VideoFiles', 'VideoResult', 'predict_videos']

logger = logging.getLogger(__name__)


@dataclass
class VideoResult:
    """One video's outcome.

    Args:
        video: the path as given.
        top: ``(index, label, probability)`` of the best classes, best first (empty on error).
        views: views scored (0 on error).
        seconds: the time of each stage: ``decode`` and ``transforms`` (in the worker that
            read it) and ``model``.
        error: why the video could not be scored (one line naming the file), None when it was.
    """

    video: str
    top: list[tuple[int, str, float]] = field(default_factory=list)
    views: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the video was scored."""
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (``top`` as ``{index, label, prob}`` records)."""
        return {'video': self.video, 'views': self.views, 'seconds': self.seconds,
                'top': [{'index': i, 'label': label, 'prob': prob}
                        for i, label, prob in self.top],
                'error': self.error}


def _one_line(err: BaseException) -> str:
    text = ' '.join(str(err).split())
    if isinstance(err, (ValueError, OSError)) and text:  # VideoError is a ValueError
        return text
    return f'{type(err).__name__}: {text}' if text else type(err).__name__


class VideoFiles(Dataset):
    """Video files as a dataset of model inputs: item ``i`` is video ``i`` read with
    ``protocol`` (what a ``DataLoader`` worker runs).

    Args:
        paths: the video files.
        protocol: how each video is sampled and transformed.
        threads: FFmpeg decoding threads per video (0: FFmpeg's choice; 1 suits workers,
            which decode side by side).

    Each item is a dict: ``index``, ``video`` (the path), ``views`` (``[V, T, 3, H, W]``
    float32, or None), ``seconds`` (``decode``, ``transforms``) and ``error`` (None, or the
    one-line reason the video could not be read: exceptions are caught, never raised).
    """

    def __init__(self, paths: Sequence[str | os.PathLike], protocol: TestProtocol,
                 threads: int = 1) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.protocol = protocol
        self.threads = threads
        self.transform = VideoTransform(protocol)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        item: dict[str, Any] = {'index': index, 'video': path, 'views': None, 'seconds': {},
                                'error': None}
        tic = time.perf_counter()
        try:
            frames = read_sampled(path, self.protocol, self.threads)
            decoded = time.perf_counter()
            item['views'] = self.transform.from_sampled(frames)
            item['seconds'] = {'decode': decoded - tic,
                               'transforms': time.perf_counter() - decoded}
        except Exception as err:  # any failure of one file is that file's row, not the run's
            item['error'] = _one_line(err)
            if not str(err).count(path):
                item['error'] = f'video {path!r}: {item["error"]}'
            item['seconds'] = {'decode': time.perf_counter() - tic}
        return item


def _unbatched(item: dict[str, Any]) -> dict[str, Any]:
    return item  # one video per item, as the worker returned it (no collation)


def predict_videos(paths: Sequence[str | os.PathLike],
                   scores: Callable[[torch.Tensor], torch.Tensor], protocol: TestProtocol,
                   labels: Sequence[str], top: int = 5, workers: int = 0,
                   prefetch: int = 2,
                   multiprocessing_context: str | None = None) -> Iterator[VideoResult]:
    """Score videos one by one, decoding the next ones in ``workers`` processes meanwhile.

    Args:
        paths: the video files, scored in this order.
        scores: the model: views ``[V, T, 3, H, W]`` -> class scores ``[num_classes]``.
        protocol: how videos are read (the model's test protocol).
        labels: class names in index order.
        top: classes kept per video.
        workers: decoding processes (0: decode in this process, between model calls).
        prefetch: videos each worker reads ahead (bounds the memory held by decoded views).
        multiprocessing_context: how workers start (``'fork'``, ``'forkserver'``,
            ``'spawn'``; None: the platform's default, fork on Linux).

    Yields:
        One :class:`VideoResult` per path, in order, as soon as it is scored.

    Raises:
        ValueError: for a bad ``top``, ``workers`` or ``prefetch`` (bad videos are results,
            never raised). Errors of the model itself are raised.
    """
    if top < 1:
        raise ValueError(f'top must be >= 1, got {top}')
    if workers < 0:
        raise ValueError(f'workers must be >= 0, got {workers}')
    if prefetch < 1:
        raise ValueError(f'prefetch must be >= 1, got {prefetch}')
    # in-process: FFmpeg's own threads; in workers: one each (the workers are the parallelism)
    data = VideoFiles(paths, protocol, threads=1 if workers else 0)
    options: dict[str, Any] = {}
    if workers:
        options = dict(prefetch_factor=prefetch, multiprocessing_context=multiprocessing_context)
    loader = DataLoader(data, batch_size=None, shuffle=False, num_workers=workers,
                        collate_fn=_unbatched, **options)
    for item in loader:
        if item['error'] is not None:
            logger.debug('%s', item['error'])
            yield VideoResult(item['video'], seconds=item['seconds'], error=item['error'])
            continue
        views = item['views']
        tic = time.perf_counter()
        probs = scores(views)
        seconds = dict(item['seconds'], model=time.perf_counter() - tic)
        values, indices = probs.topk(min(top, probs.numel()))
        yield VideoResult(item['video'],
                          [(int(i), labels[i], float(v))
                           for v, i in zip(values.tolist(), indices.tolist())],
                          len(views), seconds)
