"""ExecuTorch ``.pte`` (the ``mobile`` extra): the step and the clip model, fp32 and int8, run
by ExecuTorch's runtime and equal (fp32) or close (int8) to eager. Skipped where ExecuTorch
is not installed (``pip install -e '.[mobile]'``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import T, clips, conditioned

import tsmnet
from tsmnet import ResNetTSM, TSMStream
from tsmnet.deploy.executorch import pte_runner

pytest.importorskip('executorch')
pytest.importorskip('torchao')
# lowering to XNNPACK takes minutes for a whole ResNet-18 on two cores: two stages here
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def model() -> ResNetTSM:
    torch.manual_seed(0)
    return conditioned(ResNetTSM(18, num_segments=T, shift_mode='causal', num_stages=2,
                                 out_indices=(1,), strides=(1, 2), dilations=(1, 1),
                                 pretrained=None))


def test_step_pte_streams_like_eager(tmp_path: Path, model) -> None:
    path = tmp_path / 'step.pte'
    report = tsmnet.export(model, path, kind='step', format='pte', example=clips(1)[:, 0])
    assert report.ok, report.lines()
    assert [p.name for p in tmp_path.iterdir()] == ['step.pte']
    run = pte_runner(path)
    video = clips(1, seed=4)
    stream = TSMStream(model)
    buffers = stream.zero_buffers(video[:, 0])
    for t in range(T):
        features, *buffers = run([video[:, t], *buffers])
        torch.testing.assert_close(features, stream.step(video[:, t]), atol=1e-4, rtol=1e-4)


def test_clip_pte_int8_is_close_to_eager(tmp_path: Path, model) -> None:
    path = tmp_path / 'clip_int8.pte'
    report = tsmnet.export(model, path, kind='clip', format='pte-int8', example=clips(1),
                           calibration=clips(4, seed=2))
    assert report.ok, report.lines()
    assert report.checks['example'].cosine > 0.98
