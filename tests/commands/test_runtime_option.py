"""``tsmnet predict --runtime`` and ``tsmnet stream --runtime``: the same video's scores from
PyTorch eager, ONNX Runtime and OpenVINO (the model exported at the protocol's crop size,
checked on export) agree within the fp32 bound, and the JSON says which runtime and precision
produced them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from video_files import moving_frames, write_video

import tsmnet
from tsmnet.cli import main
from tsmnet.video import TestProtocol

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
CLASSES = ['a', 'b', 'c', 'd', 'e']


@pytest.fixture(scope='module')
def saved(tmp_path_factory) -> tuple[Path, Path]:
    """A small self-describing checkpoint (ResNet-18-TSM, three 32 x 32 crops) and a video."""
    folder = tmp_path_factory.mktemp('runtime')
    model = tsmnet.create_model(R50, depth=18, num_classes=len(CLASSES))
    protocol = TestProtocol(num_clips=8, resize_short=32, crop='three', crop_size=32)
    path = tsmnet.save(model, folder / 'model.pth', classes=CLASSES, protocol=protocol)
    video = write_video(folder / 'clip.mp4', moving_frames(40, 48, 64))
    return path, video


def _predict(saved: tuple[Path, Path], out: Path, *runtime: str) -> dict:
    path, video = saved
    assert main(['predict', str(video), '--weights', str(path), '--top', '5', '--threads', '2',
                 '--quiet', '--json', str(out), *runtime]) == 0
    return json.loads(out.read_text())


def _probs(result: dict) -> dict[str, float]:
    return {row['label']: row['prob'] for row in result['videos'][0]['top']}


@pytest.mark.slow  # exports to ONNX and OpenVINO
@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_runtimes_agree_with_eager(saved, tmp_path, runtime):
    eager = _predict(saved, tmp_path / 'eager.json')
    other = _predict(saved, tmp_path / f'{runtime}.json', '--runtime', runtime)
    assert (eager['runtime'], eager['precision']) == ('eager', 'fp32')
    assert other['runtime'] == runtime and other['precision'] in ('fp32', 'f32')
    assert other['videos'][0]['views'] == eager['videos'][0]['views'] == 3
    ours, theirs = _probs(eager), _probs(other)
    assert set(ours) == set(theirs) == set(CLASSES)
    np.testing.assert_allclose([theirs[k] for k in CLASSES], [ours[k] for k in CLASSES],
                               rtol=0, atol=1e-4)


def test_int8_without_calibration_is_refused(saved, tmp_path, capsys):
    path, video = saved
    assert main(['predict', str(video), '--weights', str(path), '--runtime', 'onnxruntime',
                 '--precision', 'int8']) == 2
    assert '--runtime/--precision' in capsys.readouterr().err


@pytest.mark.slow  # exports the step to ONNX
def test_stream_runtime_agrees_with_eager(tmp_path):
    """The causal backbone's step exported to ONNX Runtime gives the eager stream's scores on
    every frame, with the checkpoint's head and class names."""
    model = tsmnet.create_model(R50, depth=18, num_classes=len(CLASSES), shift_mode='causal')
    path = tsmnet.save(model, tmp_path / 'causal.pth', classes=CLASSES)
    video = write_video(tmp_path / 'clip.mp4', moving_frames(12, 48, 64))
    runs = {}
    for runtime in ('eager', 'onnxruntime'):
        out = tmp_path / f'{runtime}.json'
        assert main(['stream', str(video), '--weights', str(path),
                     '--size', '32', '--runtime', runtime, '--top', '5', '--quiet',
                     '--json', str(out)]) == 0
        runs[runtime] = json.loads(out.read_text())
    assert [runs[k]['runtime'] for k in runs] == ['eager', 'onnxruntime']
    eager, onnx = (runs[k]['frames'] for k in ('eager', 'onnxruntime'))
    assert len(eager) == len(onnx) == 12
    for ours, theirs in zip(eager, onnx):
        a = {row['label']: row['prob'] for row in ours['top']}
        b = {row['label']: row['prob'] for row in theirs['top']}
        assert set(a) == set(b) == set(CLASSES)
        np.testing.assert_allclose([b[k] for k in CLASSES], [a[k] for k in CLASSES],
                                   rtol=0, atol=1e-4)
