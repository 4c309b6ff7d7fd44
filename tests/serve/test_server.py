"""``tsmnet serve`` on a real uvicorn server on a loopback port: uploads score as ``tsmnet
predict`` does, a WebSocket stream scores as :class:`tsmnet.TSMStream` run here, bad input is
answered on its own stream only, and the limits hold."""

from __future__ import annotations

import asyncio
import io
import json
import resource

import httpx
import numpy as np
import pytest
import torch
import websockets
from PIL import Image
from tiny_serve import LABELS, NUM_CLASSES, local_stream_scores, tiny_model, tiny_predictor
from video_files import moving_frames
from websockets.sync.client import connect

from tsmnet.serve import BackgroundServer, ServeConfig, create_app, raw_frame


def _probs(result: dict) -> torch.Tensor:
    """A result's probabilities as ``[num_classes]`` (the result lists every class)."""
    probs = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    for item in result['top']:
        probs[item['index']] = item['prob']
        assert item['label'] == LABELS[item['index']]
    return probs


def _stream(url: str, frames: np.ndarray, top: int = NUM_CLASSES) -> list[dict]:
    """Send frames one at a time, each after the previous result (a live client's pace)."""
    with connect(f'{url}/v1/stream?top={top}') as ws:
        assert json.loads(ws.recv())['type'] == 'hello'
        results = []
        for frame in frames:
            ws.send(raw_frame(frame))
            results.append(json.loads(ws.recv()))
    return results


def test_health_models_and_page(server):
    assert httpx.get(f'{server.url}/healthz').json() == {'status': 'ok', 'streams': 0}
    model = httpx.get(f'{server.url}/v1/models').json()['models'][0]
    assert model['labels'] == LABELS and model['num_segments'] == 4
    assert model['stream_input_size'] == 56 and model['runtime'] == 'eager'
    page = httpx.get(f'{server.url}/')
    assert page.headers['content-type'].startswith('text/html')
    assert 'getUserMedia' in page.text and 'v1/stream' in page.text


@pytest.mark.slow  # a second predictor is built: over 2 s
def test_classify_equals_predictor(server, video):
    expected = tiny_predictor()(video, top=NUM_CLASSES)
    with video.open('rb') as f:
        response = httpx.post(f'{server.url}/v1/classify?top={NUM_CLASSES}',
                              files={'file': ('clip.mp4', f, 'video/mp4')}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body['views'] == expected.views == 1 and body['video'] == 'clip.mp4'
    assert [i['index'] for i in body['top']] == [i for i, _, _ in expected.top]
    np.testing.assert_allclose([i['prob'] for i in body['top']],
                               [p for _, _, p in expected.top], rtol=0, atol=1e-6)
    assert max(p for _, _, p in expected.top) > 1.5 / NUM_CLASSES  # far from uniform


@pytest.mark.parametrize('body,status,message', [
    (b'x' * (2**20 + 10), 413, 'larger than the limit of 1048576 bytes'),
    ('not a video', 422, 'clip.mp4'),
    (None, 400, "multipart/form-data file field named 'file'"),
])
def test_classify_refuses_bad_uploads(server, body, status, message):
    files = None if body is None else {'file': ('clip.mp4', body, 'video/mp4')}
    data = {'other': 'field'} if body is None else None
    response = httpx.post(f'{server.url}/v1/classify', files=files, data=data, timeout=60)
    assert response.status_code == status, response.text
    assert message in response.json()['error']
    assert '/tmp' not in response.text  # no server path in the answer
    assert httpx.get(f'{server.url}/healthz').status_code == 200


def test_stream_equals_tsmstream(server, video_frames):
    results = _stream(server.ws_url, video_frames)
    assert [r['type'] for r in results] == ['result'] * len(video_frames)
    assert [r['frame'] for r in results] == list(range(len(video_frames)))
    assert [r['window'] for r in results][:5] == [1, 2, 3, 4, 4]
    ours = torch.stack([_probs(r) for r in results])
    expected = local_stream_scores(tiny_model(), video_frames).double()
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    assert expected.max() > 1.5 / NUM_CLASSES
    assert all(r['latency_ms'] >= r['step_ms'] > 0 for r in results)


def _jpeg(frame: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format='JPEG', quality=95)
    return out.getvalue()


def test_jpeg_frames_and_reset(server, video_frames):
    frames = video_frames[:6]
    with connect(f'{server.ws_url}/v1/stream?top={NUM_CLASSES}') as ws:
        ws.recv()
        first = []
        for frame in frames:
            ws.send(_jpeg(frame))
            first.append(json.loads(ws.recv()))
        ws.send(json.dumps({'type': 'reset'}))
        assert json.loads(ws.recv()) == {'type': 'reset', 'next_frame': 6}
        again = []
        for frame in frames:
            ws.send(_jpeg(frame))
            again.append(json.loads(ws.recv()))
    assert [r['frame'] for r in again] == list(range(6, 12))
    assert [r['window'] for r in again] == [1, 2, 3, 4, 4, 4]
    for a, b in zip(first, again):  # after a reset the stream starts over
        torch.testing.assert_close(_probs(a), _probs(b), rtol=0, atol=1e-6)
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(_jpeg(f)))) for f in frames])
    expected = local_stream_scores(tiny_model(), decoded).double()
    torch.testing.assert_close(torch.stack([_probs(r) for r in first]), expected, rtol=0,
                               atol=1e-5)


def test_malformed_frames_answered_on_their_stream_only(server, video_frames):
    good = raw_frame(video_frames[0])
    bad = {
        b'hello': 'unknown frame format',
        good[:-3]: 'expected 20744 bytes',
        b'RGB8' + b'\x04\x00\x04\x00' + bytes(48): 'must be within 8..4096',
        b'\xff\xd8 not really a jpeg': 'not a decodable JPEG',
        b'RGB8\x01': 'the header is 8 bytes',
    }
    with connect(f'{server.ws_url}/v1/stream') as other, \
            connect(f'{server.ws_url}/v1/stream') as ws:
        other.recv(), ws.recv()
        for number, (message, expected) in enumerate(bad.items()):
            ws.send(message)
            answer = json.loads(ws.recv())
            assert answer['type'] == 'error' and answer['frame'] == number
            assert expected in answer['error'], answer
            other.send(good)
            assert json.loads(other.recv())['type'] == 'result'
        for text, expected in [('{"type": "jump"}', "unknown control message type 'jump'"),
                               ('reset', 'must be JSON')]:
            ws.send(text)
            answer = json.loads(ws.recv())
            assert answer['type'] == 'error' and expected in answer['error']
        ws.send(good)  # the stream goes on; its first good frame starts the window
        result = json.loads(ws.recv())
        assert result['type'] == 'result' and result['frame'] == len(bad)
        assert result['window'] == 1
    metrics = httpx.get(f'{server.url}/metrics').text
    assert 'tsmnet_serve_malformed_messages_total' in metrics


def test_over_limit_stream_refused_with_reason(server):
    with connect(f'{server.ws_url}/v1/stream') as a, connect(f'{server.ws_url}/v1/stream') as b, \
            connect(f'{server.ws_url}/v1/stream') as c, \
            connect(f'{server.ws_url}/v1/stream') as d:
        for ws in (a, b, c, d):
            assert json.loads(ws.recv())['type'] == 'hello'
        assert httpx.get(f'{server.url}/healthz').json()['streams'] == 4
        with connect(f'{server.ws_url}/v1/stream') as refused:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                refused.recv()
        assert info.value.rcvd.code == 1013
        assert info.value.rcvd.reason == ('server busy: 4 streams open (--max-streams); try '
                                          'again later')
    text = httpx.get(f'{server.url}/metrics').text
    assert 'tsmnet_serve_streams_refused_total 1' in text.splitlines()
    with connect(f'{server.ws_url}/v1/stream') as again:  # the closed ones were freed
        assert json.loads(again.recv())['type'] == 'hello'


def test_frames_are_not_compressed(server):
    """The client offers permessage-deflate (websockets' and browsers' default); the server
    declines: pixels hardly compress, and deflating a raw frame costs more than a step's
    share of the CPU."""
    with connect(f'{server.ws_url}/v1/stream') as ws:
        assert json.loads(ws.recv())['type'] == 'hello'
        assert 'Sec-WebSocket-Extensions' in ws.request.headers  # offered
        assert 'Sec-WebSocket-Extensions' not in ws.response.headers  # declined
        assert ws.protocol.extensions == []


def test_bad_top_refused(server):
    with connect(f'{server.ws_url}/v1/stream?top=zero') as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            ws.recv()
    assert info.value.rcvd.code == 1008 and 'top must be an integer' in info.value.rcvd.reason


def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def _lockstep(url: str, frames: np.ndarray) -> list[dict]:
    async with websockets.connect(f'{url}/v1/stream?top={NUM_CLASSES}') as ws:
        await ws.recv()
        results = []
        for frame in frames:
            await ws.send(raw_frame(frame))
            results.append(json.loads(await ws.recv()))
        return results


async def _all_lockstep(url: str, videos: list[np.ndarray]) -> list[list[dict]]:
    return await asyncio.gather(*(_lockstep(url, v) for v in videos))


@pytest.mark.slow
def test_sixteen_concurrent_streams_each_equal_their_solo_run():
    """16 streams of different videos for several rounds: no error, batches of several frames,
    every stream equal to its own run alone, memory flat across rounds."""
    streams, frames_each, rounds = 16, 24, 3
    videos = [moving_frames(frames_each, 60, 80, seed=100 + i) for i in range(streams)]
    model = tiny_model()
    expected = [local_stream_scores(model, v).double() for v in videos]
    app = create_app(tiny_predictor(), ServeConfig(max_streams=streams, max_batch=streams,
                                                   max_delay_ms=20))
    rss = []
    with BackgroundServer(app) as server:
        for _ in range(rounds):
            results = asyncio.run(_all_lockstep(server.ws_url, videos))
            for mine, theirs in zip(results, expected):
                assert [r['type'] for r in mine] == ['result'] * frames_each
                torch.testing.assert_close(torch.stack([_probs(r) for r in mine]), theirs,
                                           rtol=0, atol=1e-5)
            rss.append(_rss_mb())
        metrics = httpx.get(f'{server.url}/metrics').text.splitlines()
    batches = [r['batch'] for stream in results for r in stream]
    assert max(batches) > 4  # the streams were stepped together
    assert f'tsmnet_serve_frames_total {streams * frames_each * rounds}' in metrics
    assert 'tsmnet_serve_streams 0' in metrics
    assert rss[-1] - rss[0] < 50, rss  # no per-frame or per-stream growth


@pytest.mark.slow
def test_a_client_that_floods_or_never_reads_does_not_stall_another(video_frames):
    """One client sends frames without waiting and never reads; another, at a live pace, gets
    every result, equal to its solo run; the flood is dropped and counted."""
    app = create_app(tiny_predictor(), ServeConfig(max_streams=4))
    with BackgroundServer(app) as server:
        with connect(f'{server.ws_url}/v1/stream') as flood:
            flood.recv()
            for frame in np.tile(video_frames, (16, 1, 1, 1)):  # 192 frames, none read
                flood.send(raw_frame(frame))
            results = _stream(server.ws_url, video_frames)
            metrics = httpx.get(f'{server.url}/metrics').text
    expected = local_stream_scores(tiny_model(), video_frames).double()
    torch.testing.assert_close(torch.stack([_probs(r) for r in results]), expected, rtol=0,
                               atol=1e-5)
    dropped = sum(float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith('tsmnet_serve_dropped_frames_total{'))
    assert dropped > 0


def test_a_background_server_leaves_the_process_logging_alone(tmp_path):
    """uvicorn's default logging set-up closed every handler of the process: an MMEngine
    logger's file (left by a Runner earlier in the suite) then broke every later
    ``init_weights`` with ``'NoneType' object has no attribute 'write'``."""
    import logging

    from starlette.applications import Starlette

    handler = logging.FileHandler(tmp_path / 'run.log')
    logger = logging.getLogger('tsmnet-test-file-logger')
    logger.addHandler(handler)
    try:
        with BackgroundServer(Starlette()):
            pass
        assert handler.stream is not None and not handler.stream.closed  # as MMEngine needs
        logger.warning('still written')
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert 'still written' in (tmp_path / 'run.log').read_text()
