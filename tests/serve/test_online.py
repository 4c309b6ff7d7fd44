"""The online model steps any set of streams in one batch, each with its own buffers, equal to
each stream run alone by :class:`tsmnet.TSMStream`; the scheduler batches, drops and resets as
documented."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import torch
from tiny_serve import ENTRY, tiny_model

from tsmnet import TSMStream, create_model
from tsmnet.serve import BatchScheduler, OnlineModel, StreamLimitError
from tsmnet.serve.metrics import Metrics


def _solo_logits(model, frames: torch.Tensor) -> torch.Tensor:
    """``[F, K]``: each frame's logits of one stream run alone."""
    stream = TSMStream(model.backbone)
    with torch.no_grad():
        return torch.stack([model.cls_head.fc_cls(stream.step(f[None]).mean(dim=(2, 3)))[0]
                            for f in frames])


@pytest.fixture(scope='module')
def model():
    return tiny_model()


@pytest.fixture(scope='module')
def online(model):
    return OnlineModel(model, 56)


def test_streams_at_different_positions_batch_together(model, online):
    """Stream a starts, b joins at frame 2, c only in frame 3: the batch holds whoever has a
    frame, and every stream's logits are its solo run's."""
    clips = [torch.randn(4, 3, 56, 56) for _ in range(3)]
    expected = [_solo_logits(model, clip) for clip in clips]
    states = {}
    got = {0: [], 1: [], 2: []}
    schedule = [[0], [0], [0, 1], [2, 0, 1], [1], [1, 2]]  # who sends a frame at each step
    position = {0: 0, 1: 0, 2: 0}
    for who in schedule:
        frames = torch.stack([clips[s][position[s]] for s in who])
        logits, buffers = online.step(frames, [states.get(s) for s in who])
        for s, row, new in zip(who, logits, buffers):
            got[s].append(row)
            states[s] = new
            position[s] += 1
            assert all(b.shape[0] == 1 for b in new)
    for s in got:
        torch.testing.assert_close(torch.stack(got[s]), expected[s][:len(got[s])], rtol=1e-4,
                                   atol=1e-5)
    per_stream = sum(b.numel() * b.element_size() for b in states[0])
    assert per_stream == online.state_bytes < 200_000  # bounded: the folds of one frame


def test_bidirectional_model_streams_a_causal_twin(caplog):
    model = create_model(ENTRY, depth=18, num_segments=4, num_classes=5).eval()
    with caplog.at_level(logging.WARNING):
        online = OnlineModel(model, 56)
    assert 'causal shift' in caplog.text
    assert online.backbone is not model.backbone
    assert model.backbone.layer1[0].conv1.conv.shift_mode == 'bidirectional'  # untouched


def test_a_model_that_cannot_stream_is_refused():
    model = create_model(ENTRY, depth=18, num_segments=4, num_classes=5, temporal_pool=True)
    with pytest.raises(ValueError, match='temporal_pool=True'):
        OnlineModel(model.eval(), 56)


def _channels_first(pixels):
    return torch.from_numpy(pixels).movedim(-1, 0)


async def _scheduler_run(online: OnlineModel, max_pending: int = 2):
    metrics = Metrics()
    scheduler = BatchScheduler(online, _channels_first, [f'c{i}' for i in range(5)], metrics,
                               max_streams=2, max_batch=2, max_delay=0.05,
                               max_pending=max_pending)
    task = asyncio.create_task(scheduler.run())
    a, b = scheduler.open(top=5), scheduler.open(top=1)
    with pytest.raises(StreamLimitError, match='limit of 2 streams'):
        scheduler.open()
    frames = torch.randn(4, 3, 56, 56)
    pixels = frames.movedim(1, -1).numpy()  # what prepare (here: a transpose) turns back
    now = time.perf_counter()
    for n in range(3):  # a floods 3 frames at once: the first is dropped (2 may wait)
        scheduler.submit(a, n, pixels[n], now)
    scheduler.submit(b, 0, pixels[3], now)
    messages = {a.id: [], b.id: []}
    while len(messages[a.id]) < 3 or len(messages[b.id]) < 1:
        for s in (a, b):
            while not s.outbox.empty():
                messages[s.id].append(s.outbox.get_nowait())
        await asyncio.sleep(0.01)
    scheduler.reset(a)
    scheduler.submit(a, 3, pixels[1], time.perf_counter())
    after_reset = await a.outbox.get()
    scheduler.close(b)
    task.cancel()
    return scheduler, metrics, messages[a.id], messages[b.id], after_reset, frames


def test_scheduler_batches_drops_and_resets(model, online):
    scheduler, metrics, a, b, after_reset, frames = asyncio.run(_scheduler_run(online))
    assert a[0] == {'type': 'dropped', 'frame': 0,
                    'reason': 'a newer frame arrived before the model took this one'}
    assert [m['frame'] for m in a[1:]] == [1, 2]
    assert a[1]['batch'] == 2 and b[0]['batch'] == 2  # a's frame 1 and b's frame 0 together
    assert len(b[0]['top']) == 1 and len(a[1]['top']) == 5
    assert metrics.dropped['queue'] == 1 and metrics.frames == 4
    expected = _solo_logits(model, frames[1:3])
    probs = expected.mean(0).softmax(-1)
    got = torch.zeros(5)
    for item in a[2]['top']:
        got[item['index']] = item['prob']
    torch.testing.assert_close(got, probs, rtol=0, atol=1e-5)
    assert after_reset['window'] == 1  # the reset cleared the window before frame 3
    solo = _solo_logits(model, frames[1:2])[0].softmax(-1)
    got = torch.zeros(5)
    for item in after_reset['top']:
        got[item['index']] = item['prob']
    torch.testing.assert_close(got, solo, rtol=0, atol=1e-5)
    assert list(scheduler.streams) == [0] and metrics.streams == 1


@pytest.mark.parametrize('name,value', [('max_streams', 0), ('max_batch', 1.5),
                                        ('max_pending', True)])
def test_scheduler_checks_its_limits(name, value, online):
    with pytest.raises(ValueError, match=f'{name} must be an int >= 1'):
        BatchScheduler(online, _channels_first, ['x'] * 5, Metrics(), **{name: value})
