"""``tsmnet stream`` over real sources: its scores after the T-th frame equal the offline
causal recognizer's on the same frames; a pipe on standard input fed frame by frame and a
local HTTP server stream like a file; ``--jsonl -`` is one JSON line per frame, class names
included."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from fractions import Fraction
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.cli import main
from tsmnet.commands.predict import DEFAULT_MODEL
from tsmnet.online import OnlineScores
from tsmnet.stream import TSMStream
from tsmnet.train.model import build_architecture
from tsmnet.video import FrameSource, FrameTransform, single_view_protocol

T = 8  # the zoo entry's num_segments
SIZE = 32
LABELS = ['wave', 'clap', 'jump', 'sit', 'stand']


@pytest.fixture(scope='module')
def causal():
    """A causal ResNet-18-TSM recognizer of 5 classes with a wide head (scores far from
    uniform), in eval mode, and its checkpoint."""
    torch.manual_seed(3)
    model = build_architecture(DEFAULT_MODEL, len(LABELS), depth=18, shift_mode='causal').eval()
    with torch.no_grad():
        model.cls_head.fc_cls.weight.normal_(0, 2)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope='module')
def files(tmp_path_factory, causal):
    root = tmp_path_factory.mktemp('stream_live')
    frames = moving_frames(10, 40, 56, seed=5)
    write_video(root / 'clip.mp4', frames)
    write_video(root / 'clip.ts', frames)
    torch.save({'state_dict': causal.state_dict()}, root / 'causal.pth')
    (root / 'labels.txt').write_text('\n'.join(LABELS) + '\n')
    return root


def _offline_probs(model, clip: torch.Tensor) -> torch.Tensor:
    """The recognizer on one clip ``[T, 3, H, W]``: consensus of T frames, softmax."""
    with torch.no_grad():
        return model(clip[None]).softmax(-1)[0]


@pytest.mark.slow
def test_stream_scores_equal_the_offline_causal_model(causal, files):
    """Library path of ``tsmnet stream``: FrameSource -> FrameTransform -> TSMStream -> head
    -> OnlineScores(smooth=T). At frame T - 1 the window is the clip of the first T frames."""
    transform = FrameTransform(single_view_protocol(SIZE))
    stream = TSMStream(causal.backbone)
    scores = OnlineScores(LABELS, smooth=T)
    weight, bias = causal.cls_head.fc_cls.weight, causal.cls_head.fc_cls.bias
    inputs, probs = [], []
    with FrameSource(files / 'clip.mp4') as source:
        for _, frame in source:
            x = transform(frame)
            inputs.append(x)
            features = stream.step(x[None]).mean(dim=(2, 3))[0]
            probs.append(scores.update(features @ weight.t() + bias).probs)
    assert len(inputs) == 10
    want = _offline_probs(causal, torch.stack(inputs[:T]))
    assert want.max() > 0.5  # far from uniform: the comparison means something
    torch.testing.assert_close(probs[T - 1], want, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_cli_scores_equal_the_offline_causal_model(causal, files, capsys):
    status = main(['stream', str(files / 'clip.mp4'), '--backbone', 'resnet18', '--size', str(SIZE),
                   '--weights', str(files / 'causal.pth'), '--smooth', str(T), '--top', '5',
                   '--jsonl', '-', '--threads', '1'])
    out, err = capsys.readouterr()
    assert status == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r['frame'] for r in rows] == list(range(10)) and rows[-1]['dropped'] == 0
    transform = FrameTransform(single_view_protocol(SIZE))
    with FrameSource(files / 'clip.mp4') as source:
        clip = torch.stack([transform(f) for _, f in source][:T])
    want = _offline_probs(causal, clip)
    got = torch.zeros(len(LABELS))
    for item in rows[T - 1]['top']:
        got[item['index']] = item['prob']
        assert item['label'] == LABELS[item['index']]  # names from labels.txt beside it
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert rows[T - 1]['label'] == LABELS[int(want.argmax())] and rows[T - 1]['window'] == T
    assert f'frame {T - 1:4d}' in err and LABELS[int(want.argmax())] in err


@pytest.mark.slow
def test_cli_threshold_and_an_http_source(files, capsys):
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(files))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/clip.ts'
        status = main(['stream', url, '--backbone', 'resnet18', '--size', str(SIZE), '--weights',
                       str(files / 'causal.pth'), '--threshold', '0.9', '--smooth', '1',
                       '--no-drop',
                       '--jsonl', '-', '--threads', '1'])
    finally:
        server.shutdown()
        server.server_close()
    out, err = capsys.readouterr()
    assert status == 0 and f'streaming stream {url}' in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r['frame'] for r in rows] == list(range(10)) and rows[-1]['dropped'] == 0
    for r in rows:  # named when the top class reaches the threshold, else no label
        best = r['top'][0]
        assert r['label'] == (best['label'] if best['prob'] >= 0.9 else None)
        assert best['label'] in LABELS and r['window'] == 1
    assert '10 frames;' in err


def _mjpeg_packets(frames: np.ndarray) -> list[bytes]:
    codec = av.CodecContext.create('mjpeg', 'w')
    codec.width, codec.height = frames.shape[2], frames.shape[1]
    codec.pix_fmt, codec.time_base = 'yuvj420p', Fraction(1, 25)
    packets = []
    for frame in frames:
        image = av.VideoFrame.from_ndarray(frame, format='rgb24').reformat(format='yuvj420p')
        packets += [bytes(p) for p in codec.encode(image)]
    packets += [bytes(p) for p in codec.encode(None)]
    return packets


@pytest.mark.slow
def test_a_pipe_on_stdin_fed_frame_by_frame(files):
    """MJPEG frames written one by one to the command's standard input: each is scored (the
    command waits with --no-drop); without it, what the model is too slow for is dropped and
    counted, and processed + dropped frames are all that were sent."""
    packets = _mjpeg_packets(moving_frames(12, 40, 56, seed=1))
    env = dict(os.environ, TSMNET_SHIFT_BACKEND='torch')
    for extra in (['--no-drop'], []):
        proc = subprocess.Popen(
            [sys.executable, '-m', 'tsmnet', 'stream', '-', '--input-format', 'mjpeg',
             '--backbone', 'resnet18', '--size', str(SIZE), '--weights', str(files / 'causal.pth'),
             '--jsonl', '-', '--queue', '1', '--threads', '1', *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for packet in packets:
            proc.stdin.write(packet)
            proc.stdin.flush()
            if extra:
                time.sleep(0.02)
        proc.stdin.close()  # the end of the stream
        proc.wait(timeout=300)
        out, err = proc.stdout.read(), proc.stderr.read()
        assert proc.returncode == 0, err.decode()[-2000:]
        rows = [json.loads(line) for line in out.decode().splitlines()]
        if extra:
            assert [r['frame'] for r in rows] == list(range(12)) and rows[-1]['dropped'] == 0
        else:
            dropped = int(err.decode().rsplit(' frames dropped', 1)[0].rsplit(' ', 1)[-1])
            assert len(rows) + dropped == 12 and rows[-1]['frame'] == 11
        assert all(r['top'][0]['label'] in LABELS for r in rows)
