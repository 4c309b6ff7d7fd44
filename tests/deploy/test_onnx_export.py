"""``tsmnet.export`` to fp32 ONNX: the clip model for any batch, the online step for any number
of streams, equal to eager; files complete on their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
import torch
from conftest import SIZE, T, causal_r18, clips, conditioned
from torch import nn

import tsmnet
from tsmnet import TSMStream
from tsmnet.deploy import write_onnx
from tsmnet.deploy.verify import onnx_runner

pytestmark = pytest.mark.slow  # every test exports to ONNX

TOL = 1e-4


@pytest.fixture(scope='module')
def step_file(tmp_path_factory, model):
    path = tmp_path_factory.mktemp('step') / 'step.onnx'
    report = tsmnet.export(model, path, kind='step', example=clips(1)[:, 0])
    return path, report


def test_step_report_and_a_file_complete_on_its_own(step_file, tmp_path: Path) -> None:
    path, report = step_file
    assert report.ok and report.format == 'onnx' and report.kind == 'step'
    assert set(report.checks) == {'example', 'streamed clip (2 x 3 frames)'}
    assert report.max_abs_diff < TOL * 10 and report.top1_agreement == 1.0
    assert report.inputs == ['frames'] + [f'buffer_{i}' for i in range(8)]
    assert report.outputs == ['features'] + [f'new_buffer_{i}' for i in range(8)]
    # the weights are inside the file: nothing beside it, no temporary name anywhere
    assert sorted(p.name for p in path.parent.iterdir()) == ['step.onnx']
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    copy = tmp_path / 'elsewhere.onnx'
    shutil.copy(path, copy)
    onnx_runner(str(copy))([torch.zeros(1, 3, SIZE, SIZE),
                            *TSMStream(causal_r18()).zero_buffers(torch.zeros(1, 3, SIZE, SIZE))])


def test_step_streams_any_number_of_streams_like_eager(step_file, model) -> None:
    path, _ = step_file
    run = onnx_runner(str(path))
    video = clips(3, seed=5)                      # 3 streams: not the export's N
    stream = TSMStream(model)
    buffers = stream.zero_buffers(video[:, 0])
    for t in range(T):
        expected = stream.step(video[:, t])
        features, *buffers = run([video[:, t], *buffers])
        torch.testing.assert_close(features, expected, atol=TOL, rtol=TOL)


def test_clip_any_batch_like_eager(tmp_path: Path, model) -> None:
    path = tmp_path / 'clip.onnx'
    report = tsmnet.export(model, path, kind='clip', example=clips(2))
    assert report.ok and set(report.checks) == {'example', 'batch of 3'}
    assert report.outputs == ['features']
    run = onnx_runner(str(path))
    for n in (1, 4):
        x = clips(n, seed=n)
        torch.testing.assert_close(run([x])[0], model(x.flatten(0, 1)), atol=TOL, rtol=TOL)
    assert not model.training  # the mode is restored (eval before, eval after)


def test_stream_export_onnx_is_self_contained(tmp_path: Path) -> None:
    """``TSMStream.export_onnx`` used to refer to a hidden ``.step.onnx.XXXX.tmp.data``."""
    model = conditioned_plain()
    path = tmp_path / 'step.onnx'
    TSMStream(model).export_onnx(path, torch.zeros(1, 3, SIZE, SIZE))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['step.onnx']
    run = onnx_runner(str(path))
    x = clips(1)[:, 0]
    torch.testing.assert_close(run([x])[0], model(x), atol=TOL, rtol=TOL)


def conditioned_plain() -> nn.Module:
    return conditioned(tsmnet.ResNet(18, pretrained=None))


def test_external_data_is_named_after_the_model(tmp_path: Path) -> None:
    """Beyond ONNX's 2 GB the weights go beside the model, in ``NAME.onnx.data`` (forced
    here on a small module)."""
    module = nn.Conv2d(3, 8, 3).eval()
    path = tmp_path / 'big.onnx'
    write_onnx(module, (torch.randn(1, 3, 8, 8),), path, input_names=['x'],
               output_names=['y'], external_data=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['big.onnx', 'big.onnx.data']
    proto = onnx.load(str(path), load_external_data=False)
    locations = {e.value for t in proto.graph.initializer for e in t.external_data
                 if e.key == 'location'}
    assert locations == {'big.onnx.data'}
    moved = tmp_path / 'moved'
    moved.mkdir()
    for name in ('big.onnx', 'big.onnx.data'):
        shutil.move(tmp_path / name, moved / name)
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(onnx_runner(str(moved / 'big.onnx'))([x])[0], module(x),
                               atol=1e-5, rtol=1e-5)


def test_recognizer_step_scores_average_to_the_clip_scores(tmp_path: Path, model) -> None:
    """A recogniser's step gives each frame's class scores; their mean over the clip is the
    recogniser's clip score (TSM's average consensus, online)."""
    head = tsmnet.TSMHead(5, 512, num_segments=T, dropout_ratio=0.5)
    torch.nn.init.normal_(head.fc_cls.weight, std=0.1)
    recognizer = tsmnet.Recognizer(model, head).eval()
    path = tmp_path / 'recognizer_step.onnx'
    report = tsmnet.export(recognizer, path, kind='step', example=clips(1)[:, 0])
    assert report.ok and report.outputs[0] == 'scores'
    run = onnx_runner(str(path))
    video = clips(2, seed=9)
    buffers = TSMStream(model).zero_buffers(video[:, 0])
    total = 0
    for t in range(T):
        scores, *buffers = run([video[:, t], *buffers])
        total = total + scores
    with torch.no_grad():
        torch.testing.assert_close(total / T, recognizer(video), atol=TOL, rtol=TOL)
