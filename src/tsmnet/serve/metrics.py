"""The server's counters, and their Prometheus text exposition (format 0.0.4).

Latency quantiles are over the last :data:`WINDOW` frames and frames per second over the last
:data:`RATE_SECONDS`, so both follow the present load; counters only grow.
"""

from __future__ import annotations

import bisect
import time
from collections import deque

WINDOW = 2048  # frames whose latency the quantiles are taken over
RATE_SECONDS = 10.0  # frames/s is the count over this many seconds
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
QUANTILES = (0.5, 0.9, 0.99)
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'


def quantile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values, linearly interpolated (NaN when empty)."""
    if not sorted_values:
        return float('nan')
    pos = q * (len(sorted_values) - 1)
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


class Metrics:
    """What ``GET /metrics`` reports. All methods run on the server's event loop."""

    def __init__(self) -> None:
        self.streams = 0
        self.streams_opened = 0
        self.streams_refused = 0
        self.frames = 0
        self.dropped: dict[str, int] = {'queue': 0, 'outbox': 0}
        self.malformed = 0
        self.classify: dict[str, int] = {'ok': 0, 'error': 0, 'too_large': 0}
        self.batches = 0
        self.batch_counts = [0] * (len(BATCH_BUCKETS) + 1)
        self.batch_frames = 0
        self.latency_sum = 0.0
        self._latencies: deque[float] = deque(maxlen=WINDOW)
        self._frame_times: deque[float] = deque()

    def batch(self, size: int, latencies: list[float]) -> None:
        """A step of ``size`` frames whose latencies (seconds, arrival to result) are given."""
        self.batches += 1
        self.batch_frames += size
        self.batch_counts[bisect.bisect_left(BATCH_BUCKETS, size)] += 1
        now = time.monotonic()
        self.frames += len(latencies)
        self.latency_sum += sum(latencies)
        self._latencies.extend(latencies)
        self._frame_times.extend([now] * len(latencies))
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._frame_times and self._frame_times[0] < now - RATE_SECONDS:
            self._frame_times.popleft()

    def frames_per_second(self) -> float:
        """Frames classified per second over the last :data:`RATE_SECONDS`."""
        self._trim(time.monotonic())
        return len(self._frame_times) / RATE_SECONDS

    def latency_quantiles(self) -> dict[float, float]:
        values = sorted(self._latencies)
        return {q: quantile(values, q) for q in QUANTILES}

    def render(self) -> str:
        """The Prometheus text exposition."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]
                   ) -> None:
            lines.append(f'# HELP {name} {help_text}')
            lines.append(f'# TYPE {name} {kind}')
            lines.extend(f'{name}{labels} {_number(value)}' for labels, value in samples)

        prefix = 'tsmnet_serve_'
        metric(f'{prefix}streams', 'gauge', 'WebSocket streams open now.',
               [('', self.streams)])
        metric(f'{prefix}streams_opened_total', 'counter', 'Streams accepted.',
               [('', self.streams_opened)])
        metric(f'{prefix}streams_refused_total', 'counter',
               'Streams refused because --max-streams were open.', [('', self.streams_refused)])
        metric(f'{prefix}frames_total', 'counter', 'Frames classified.', [('', self.frames)])
        metric(f'{prefix}frames_per_second', 'gauge',
               f'Frames classified per second over the last {RATE_SECONDS:g} s.',
               [('', self.frames_per_second())])
        metric(f'{prefix}dropped_frames_total', 'counter',
               'Frames dropped: queue (a newer frame of the stream replaced it before it was '
               'stepped), outbox (its result could not be sent: the client reads too slowly).',
               [(f'{{reason="{k}"}}', v) for k, v in self.dropped.items()])
        metric(f'{prefix}malformed_messages_total', 'counter',
               'Messages answered with an error (bad frame or control message).',
               [('', self.malformed)])
        metric(f'{prefix}classify_requests_total', 'counter', 'POST /v1/classify requests.',
               [(f'{{result="{k}"}}', v) for k, v in self.classify.items()])
        cumulative, samples = 0, []
        for bound, count in zip(BATCH_BUCKETS, self.batch_counts):
            cumulative += count
            samples.append((f'_bucket{{le="{bound}"}}', cumulative))
        samples.append(('_bucket{le="+Inf"}', self.batches))
        samples += [('_sum', self.batch_frames), ('_count', self.batches)]
        lines += [f'# HELP {prefix}batch_size Frames per model step.',
                  f'# TYPE {prefix}batch_size histogram']
        lines += [f'{prefix}batch_size{suffix} {_number(v)}' for suffix, v in samples]
        name = f'{prefix}frame_latency_seconds'
        lines += [f'# HELP {name} Arrival of a frame to its result, over the last {WINDOW} '
                  'frames.', f'# TYPE {name} summary']
        lines += [f'{name}{{quantile="{q}"}} {_number(v)}'
                  for q, v in self.latency_quantiles().items()]
        lines += [f'{name}_sum {_number(self.latency_sum)}', f'{name}_count {self.frames}']
        return '\n'.join(lines) + '\n'


def _number(value: float) -> str:
    if value != value:  # NaN, Prometheus' spelling
        return 'NaN'
    return repr(float(value)) if isinstance(value, float) else str(value)
