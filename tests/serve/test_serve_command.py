"""``tsmnet serve`` as a user runs it: a checkpoint of a fine-tuned causal model, served in its
own process on a loopback port; bad options fail the tsmnet way before a model is built; the
model and its runtime come through the same library path as ``tsmnet predict``'s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import torch
from tiny_serve import ENTRY, NUM_CLASSES, PROTOCOL, local_stream_scores, tiny_model
from video_files import moving_frames, write_video
from websockets.sync.client import connect

import tsmnet
from tsmnet.cli import main
from tsmnet.serve import raw_frame
from tsmnet.serve.server import free_port


@pytest.mark.parametrize('args,message', [
    (['--max-batch', '0'], '--max-batch must be >= 1, got 0'),
    (['--max-streams', '-1'], '--max-streams must be >= 1'),
    (['--max-delay-ms', '-5'], '--max-delay-ms must be within 0..1000'),
    (['--max-upload-mb', '0'], '--max-upload-mb must be within 0..16384'),
    (['--port', '70000'], '--port must be within 0..65535'),
    (['--threads', '0'], '--threads must be >= 1'),
])
def test_bad_options_fail_in_one_line(args, message, capsys):
    assert main(['serve', *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith('tsmnet serve: error: ') and err.count('\n') == 1, err
    assert message in err


def _wait_until_up(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, process.stdout.read()
        try:
            if httpx.get(f'{url}/healthz').status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, 'the server did not start within 180 s'
        time.sleep(0.5)


@pytest.mark.slow
def test_serve_a_finetuned_checkpoint(tmp_path):
    """What ``tsmnet finetune`` saves (architecture and protocol in the meta, labels.txt beside
    it) is served; /v1/models shows them and a stream answers with its labels."""
    model = tiny_model()
    weights = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'model': ENTRY, 'tsmnet': {
        'architecture': {'depth': 18, 'shift_mode': 'causal'},
        'protocol': {'resize_short': 64, 'crop': 'center', 'crop_size': 56}}}}, weights)
    (tmp_path / 'labels.txt').write_text(''.join(f'gesture {i}\n' for i in range(NUM_CLASSES)))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, '-m', 'tsmnet', 'serve', '--model', ENTRY, '--weights', str(weights),
         '--port', str(port), '--threads', '1', '--max-streams', '2', '--log-level', 'warning'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    url = f'http://127.0.0.1:{port}'
    try:
        _wait_until_up(process, url)
        info = httpx.get(f'{url}/v1/models').json()['models'][0]
        assert info['name'] == ENTRY and info['stream_input_size'] == 56
        assert info['labels'] == [f'gesture {i}' for i in range(NUM_CLASSES)]
        assert info['max_streams'] == 2 and info['num_segments'] == 8
        with connect(f'ws://127.0.0.1:{port}/v1/stream?top=2') as ws:
            assert json.loads(ws.recv())['type'] == 'hello'
            ws.send(raw_frame(moving_frames(1, 64, 80)[0]))
            result = json.loads(ws.recv())
        assert result['type'] == 'result' and len(result['top']) == 2
        assert result['top'][0]['label'].startswith('gesture ')
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    assert f'serving {ENTRY} on http://127.0.0.1:{port}' in output
    assert process.returncode == 0 and output.rstrip().endswith('stopped'), output


@pytest.mark.slow  # exports the model, a server process
@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_serve_runtime_scores_uploads_as_predict(tmp_path, capsys, runtime):
    """``--weights`` alone (a tsmnet.save file) and ``--runtime``: /v1/models says so, an
    upload's scores are ``tsmnet predict``'s with the same options, and a stream stepped by
    the exported step gives the eager stream's scores."""
    pytest.importorskip(runtime)
    model = tiny_model()
    model.protocol = PROTOCOL
    weights = tsmnet.save(model, tmp_path / 'causal.pth',
                          classes=[f'gesture {i}' for i in range(NUM_CLASSES)])
    frames = moving_frames(12, 64, 80)
    video = write_video(tmp_path / 'clip.mp4', frames)
    assert main(['predict', str(video), '--weights', str(weights), '--runtime', runtime,
                 '--top', str(NUM_CLASSES), '--json', '-']) == 0
    expected = json.loads(capsys.readouterr().out)['videos'][0]['top']
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, '-m', 'tsmnet', 'serve', '--weights', str(weights), '--runtime',
         runtime, '--port', str(port), '--threads', '1', '--log-level', 'warning'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    url = f'http://127.0.0.1:{port}'
    try:
        _wait_until_up(process, url)
        info = httpx.get(f'{url}/v1/models').json()['models'][0]
        assert (info['runtime'], info['precision']) == (runtime, 'fp32')
        assert info['stream_runtime'] == f'{runtime} fp32'
        assert info['name'] == str(weights) and info['labels'][0] == 'gesture 0'
        with video.open('rb') as f:
            response = httpx.post(f'{url}/v1/classify?top={NUM_CLASSES}',
                                  files={'file': ('clip.mp4', f, 'video/mp4')}, timeout=60)
        assert response.status_code == 200, response.text
        top = response.json()['top']
        streamed = []
        with connect(f'ws://127.0.0.1:{port}/v1/stream?top={NUM_CLASSES}') as ws:
            assert json.loads(ws.recv())['type'] == 'hello'
            for frame in frames[:6]:
                ws.send(raw_frame(frame))
                streamed.append(json.loads(ws.recv()))
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert [t['label'] for t in top] == [t['label'] for t in expected]
    np.testing.assert_allclose([t['prob'] for t in top], [t['prob'] for t in expected],
                               rtol=0, atol=1e-6)
    local = local_stream_scores(tiny_model(), frames[:6]).numpy()
    for result, want in zip(streamed, local):
        assert result['type'] == 'result', result
        got = np.zeros(NUM_CLASSES)
        for item in result['top']:
            got[item['index']] = item['prob']
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
