"""``GET /metrics``: Prometheus text that a Prometheus parser reads, with the counts given."""

from __future__ import annotations

import math

from tsmnet.serve.metrics import Metrics, quantile


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith('#'):
            assert line.split()[1] in ('HELP', 'TYPE'), line
            continue
        name, value = line.rsplit(' ', 1)
        samples[name] = float(value)
    return samples


def test_quantile_interpolates():
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([5.0], 0.99) == 5.0
    assert math.isnan(quantile([], 0.5))


def test_render():
    metrics = Metrics()
    assert _samples(metrics.render())['tsmnet_serve_frame_latency_seconds{quantile="0.5"}'] != \
        0  # NaN before any frame
    metrics.streams, metrics.streams_refused = 3, 2
    metrics.batch(1, [0.010])
    metrics.batch(3, [0.020, 0.030, 0.040])
    metrics.dropped['queue'] += 4
    samples = _samples(metrics.render())
    assert samples['tsmnet_serve_streams'] == 3
    assert samples['tsmnet_serve_streams_refused_total'] == 2
    assert samples['tsmnet_serve_frames_total'] == 4
    assert samples['tsmnet_serve_frames_per_second'] == 0.4  # 4 frames over the last 10 s
    assert samples['tsmnet_serve_dropped_frames_total{reason="queue"}'] == 4
    assert samples['tsmnet_serve_batch_size_bucket{le="1"}'] == 1
    assert samples['tsmnet_serve_batch_size_bucket{le="2"}'] == 1
    assert samples['tsmnet_serve_batch_size_bucket{le="4"}'] == 2
    assert samples['tsmnet_serve_batch_size_bucket{le="+Inf"}'] == 2
    assert samples['tsmnet_serve_batch_size_sum'] == 4
    assert samples['tsmnet_serve_frame_latency_seconds{quantile="0.5"}'] == 0.025
    assert samples['tsmnet_serve_frame_latency_seconds_count'] == 4
    assert abs(samples['tsmnet_serve_frame_latency_seconds_sum'] - 0.1) < 1e-12
