"""The batching scheduler: frames of every open stream stepped together, each stream with its
own shift state.

Streams submit frames as they arrive. A step takes at most one frame from each stream with a
frame waiting (a stream's next frame needs the buffers its previous frame leaves), oldest
first, as soon as ``max_batch`` streams have one or the oldest has waited ``max_delay``
seconds. The model runs on a worker thread, so the event loop keeps receiving frames and
sending results meanwhile.

Nothing a client does can hold the others back or grow without bound:

- a stream keeps at most ``max_pending`` frames waiting; a newer frame drops the oldest (a
  live source wants the present, and the client is told which frame was dropped);
- results go to the stream's outbox, which its own task sends; the scheduler never waits on a
  client, and a full outbox (a client that does not read) drops results;
- at most ``max_streams`` streams are open.

A stream's state is its buffers (one ``[1, ...]`` tensor per shift site), the logits of its
last ``T`` frames and its queues: bounded, and freed when it closes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .metrics import Metrics
from .online import Buffers, OnlineModel

LOGGER = logging.getLogger(__name__)


class StreamLimitError(RuntimeError):
    """``max_streams`` streams are open already."""


@dataclass
class Pending:
    """A frame waiting for the model: its number in the stream, its decoded pixels
    ``[H, W, 3]`` uint8, its arrival (``time.perf_counter()``) and whether the stream is reset
    before it."""

    number: int
    frame: np.ndarray
    arrived: float
    reset: bool = False


class Stream:
    """One client's stream: shift state, score window and queues.

    Args:
        stream_id: A number unique in the server's life.
        top: Labels per result.
        window: Frames whose logits are averaged (the model's ``T``).
        outbox_size: Messages waiting to be sent before results are dropped.
    """

    def __init__(self, stream_id: int, top: int, window: int, outbox_size: int) -> None:
        self.id = stream_id
        self.top = top
        self.buffers: Buffers | None = None
        self.window: deque[torch.Tensor] = deque(maxlen=window)
        self.pending: deque[Pending] = deque()
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(outbox_size)
        self.reset_next = False
        self.closed = False


class BatchScheduler:
    """Steps the frames of all streams in batches.

    Args:
        model: The online model.
        prepare: Decoded pixels ``[H, W, 3]`` uint8 -> the model's input ``[3, S, S]``; run
            on the worker thread with the step, for the whole batch (one thread hop per batch
            rather than per frame, and no second thread taking the GIL from the model's).
        labels: Class names in index order.
        metrics: Where batches, latencies and drops are counted.
        max_streams: Streams open at once. Defaults to 16.
        max_batch: Frames per step (``B``). Defaults to 16.
        max_delay: Seconds the oldest waiting frame may wait for others to join its batch
            (``D``). Defaults to 0.005.
        max_pending: Frames a stream may have waiting; a newer one drops the oldest.
            Defaults to 2.
        outbox_size: Results waiting to be sent per stream. Defaults to 32.
    """

    def __init__(self, model: OnlineModel, prepare: Callable[[np.ndarray], torch.Tensor],
                 labels: Sequence[str], metrics: Metrics,
                 max_streams: int = 16, max_batch: int = 16, max_delay: float = 0.005,
                 max_pending: int = 2, outbox_size: int = 32) -> None:
        for name, value in (('max_streams', max_streams), ('max_batch', max_batch),
                            ('max_pending', max_pending), ('outbox_size', outbox_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an int >= 1, got {value!r}')
        if not max_delay >= 0:
            raise ValueError(f'max_delay must be >= 0 seconds, got {max_delay!r}')
        self.model, self.prepare = model, prepare
        self.labels, self.metrics = list(labels), metrics
        self.max_streams, self.max_batch, self.max_delay = max_streams, max_batch, max_delay
        self.max_pending, self.outbox_size = max_pending, outbox_size
        self.streams: dict[int, Stream] = {}
        self._ids = itertools.count()
        self._wake = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, 'tsmnet-step')

    def open(self, top: int = 5) -> Stream:
        """A new stream.

        Raises:
            StreamLimitError: ``max_streams`` are open.
        """
        if len(self.streams) >= self.max_streams:
            self.metrics.streams_refused += 1
            raise StreamLimitError(f'the server is at its limit of {self.max_streams} streams '
                                   f'(--max-streams); try again later')
        stream = Stream(next(self._ids), top, self.model.window, self.outbox_size)
        self.streams[stream.id] = stream
        self.metrics.streams = len(self.streams)
        self.metrics.streams_opened += 1
        return stream

    def close(self, stream: Stream) -> None:
        """Forget a stream: its frames, buffers and results (a step under way for it is
        discarded)."""
        stream.closed = True
        stream.pending.clear()
        stream.buffers = None
        stream.window.clear()
        self.streams.pop(stream.id, None)
        self.metrics.streams = len(self.streams)

    def reset(self, stream: Stream) -> None:
        """Clear the stream's buffers and window before its next frame."""
        stream.reset_next = True

    def submit(self, stream: Stream, number: int, frame: np.ndarray, arrived: float) -> None:
        """Queue frame ``number`` (``[H, W, 3]`` uint8, arrived at ``arrived``) of
        ``stream``."""
        if stream.closed:
            return
        item = Pending(number, frame, arrived, stream.reset_next)
        stream.reset_next = False
        if len(stream.pending) >= self.max_pending:
            dropped = stream.pending.popleft()
            self.metrics.dropped['queue'] += 1
            if dropped.reset:  # the reset still comes before the next frame stepped
                (stream.pending[0] if stream.pending else item).reset = True
            self.post(stream, {'type': 'dropped', 'frame': dropped.number,
                               'reason': 'a newer frame arrived before the model took this one'})
        stream.pending.append(item)
        self._wake.set()

    def post(self, stream: Stream, message: dict[str, Any]) -> None:
        """Queue a message for the stream's sender; dropped when its outbox is full."""
        if stream.closed:
            return
        try:
            stream.outbox.put_nowait(message)
        except asyncio.QueueFull:
            if message.get('type') == 'result':
                self.metrics.dropped['outbox'] += 1

    def _ready(self) -> list[Stream]:
        return [s for s in self.streams.values() if s.pending]

    async def run(self) -> None:
        """Step batches until cancelled."""
        try:
            while True:
                ready = self._ready()
                if not ready:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                oldest = min(s.pending[0].arrived for s in ready)
                wait = oldest + self.max_delay - time.perf_counter()
                # no other stream can join when every open stream has a frame waiting
                full = min(self.max_batch, len(self.streams))
                if len(ready) < full and wait > 0:
                    self._wake.clear()
                    try:  # more frames may join; a new arrival wakes us to count again
                        await asyncio.wait_for(self._wake.wait(), wait)
                    except TimeoutError:
                        pass
                    if len(self._ready()) < min(self.max_batch, len(self.streams)) and \
                            time.perf_counter() < oldest + self.max_delay:
                        continue
                    ready = self._ready()
                batch = sorted(ready, key=lambda s: s.pending[0].arrived)[:self.max_batch]
                await self._step(batch)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _work(self, frames: list[np.ndarray], states: list[Buffers | None]
              ) -> tuple[torch.Tensor, list[Buffers]]:
        """The worker thread's part: prepare the frames, step them."""
        return self.model.step(torch.stack([self.prepare(f) for f in frames]), states)

    async def _step(self, batch: list[Stream]) -> None:
        items = [s.pending.popleft() for s in batch]
        for stream, item in zip(batch, items):
            if item.reset:
                stream.buffers = None
                stream.window.clear()
        states = [s.buffers for s in batch]
        started = time.perf_counter()
        try:
            logits, buffers = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._work, [item.frame for item in items], states)
        except Exception as err:  # a failed step must not end the server or other batches
            LOGGER.exception('model step of %d frames failed', len(batch))
            for stream, item in zip(batch, items):
                self.post(stream, {'type': 'error', 'frame': item.number,
                                   'error': f'the model step failed: {type(err).__name__}'})
            return
        done = time.perf_counter()
        latencies = []
        for stream, item, row, new in zip(batch, items, logits, buffers):
            if stream.closed:
                continue
            stream.buffers = new
            stream.window.append(row)
            probs = OnlineModel.scores(stream.window)
            values, indices = probs.topk(min(stream.top, probs.numel()))
            latencies.append(done - item.arrived)
            self.post(stream, {
                'type': 'result', 'frame': item.number,
                'top': [{'index': i, 'label': self.labels[i], 'prob': p}
                        for i, p in zip(indices.tolist(), values.tolist())],
                'latency_ms': round(1e3 * (done - item.arrived), 3),
                'step_ms': round(1e3 * (done - started), 3), 'batch': len(batch),
                'window': len(stream.window)})
        self.metrics.batch(len(batch), latencies)
