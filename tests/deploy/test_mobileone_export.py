"""MobileOneTSM deployed: the reparameterised form exports to ONNX (fp32 and int8) and checks
itself against eager; the causal form streams frame by frame, in both forms, equal to the
offline model (its shift wraps whole blocks, so each block needs only the past fold)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SIZE, T, clips, conditioned

import tsmnet
from tsmnet import MobileOneTSM, TSMStream

TINY = dict(num_blocks=[1, 2, 1, 1], width_factor=[0.25, 0.25, 0.5, 0.5],
            num_conv_branches=[2, 1, 3, 1], num_se_blocks=[0, 1, 1, 1])


def _mobileone(deploy: bool, shift_mode: str = 'causal') -> MobileOneTSM:
    torch.manual_seed(0)
    model = conditioned(MobileOneTSM(TINY, num_segments=T, shift_mode=shift_mode))
    return model.switch_to_deploy() if deploy else model


@pytest.mark.parametrize('deploy', [False, True], ids=['training-form', 'deploy-form'])
def test_causal_mobileone_streams_like_the_offline_model(deploy):
    model = _mobileone(deploy)
    video = clips(2, seed=3)                       # [2, T, 3, SIZE, SIZE]
    with torch.no_grad():
        offline = model(video.flatten(0, 1)).unflatten(0, (2, T))
    stream = TSMStream(model)
    assert stream.num_sites == 2 * sum(TINY['num_blocks'])  # stage0 has no channel to shift
    for t in range(T):
        torch.testing.assert_close(stream.step(video[:, t]), offline[:, t], atol=1e-4,
                                   rtol=1e-4)


def test_bidirectional_mobileone_is_refused_by_the_stream():
    with pytest.raises(ValueError, match="shift_mode='bidirectional'"):
        TSMStream(_mobileone(True, 'bidirectional'))


@pytest.mark.slow
@pytest.mark.parametrize('fmt', ['onnx', 'onnx-int8'])
def test_deploy_form_clip_exports_and_checks_itself(tmp_path: Path, fmt):
    model = _mobileone(True, 'bidirectional')
    kwargs = dict(calibration=clips(4, seed=1)) if fmt == 'onnx-int8' else {}
    report = tsmnet.export(model, tmp_path / 'clip.onnx', format=fmt, example=clips(1), **kwargs)
    assert report.ok, report


@pytest.mark.slow
def test_deploy_form_step_exports_and_checks_itself(tmp_path: Path):
    model = _mobileone(True)
    report = tsmnet.export(model, tmp_path / 'step.onnx', kind='step',
                           example=clips(1)[:, 0])
    assert report.ok, report
    assert len(report.inputs) == 1 + 2 * sum(TINY['num_blocks'])


@pytest.mark.slow
def test_zoo_deploy_model_exports(tmp_path: Path):
    """The zoo's deploy name through create_model, a forward and an fp32 ONNX export of the
    whole recognizer (T=16 clips, small frames)."""
    name = 'tsm_imagenet-pretrained-mobileone-s4_deploy_8xb16-1x1x16-50e_kinetics400-rgb'
    model = tsmnet.create_model(name).eval()
    clip = torch.randn(1, 16, 3, SIZE * 2, SIZE * 2)
    with torch.no_grad():
        assert model(clip).shape == (1, 400)
    report = tsmnet.export(model, tmp_path / 'mobileone.onnx', example=clip)
    assert report.ok, report
