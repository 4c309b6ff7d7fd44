"""The zoo's MobileOne-S4-TSM names through the commands: ``tsmnet predict`` gives the same
scores with the training form and its ``_deploy_`` twin (folded on load) from one checkpoint
in the released layout, and ``tsmnet finetune`` trains a MobileOne-TSM whose checkpoint
``tsmnet predict`` reads back with its class names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet import create_model
from tsmnet.cli import main

S4 = 'tsm_imagenet-pretrained-mobileone-s4_8xb16-1x1x16-50e_kinetics400-rgb'
S4_DEPLOY = 'tsm_imagenet-pretrained-mobileone-s4_deploy_8xb16-1x1x16-50e_kinetics400-rgb'

pytestmark = pytest.mark.slow  # MobileOne-S4 at the protocol's 256 x 256, 16 frames


def _released_checkpoint(path: Path, seed: int = 0) -> Path:
    """The training form's recognizer with non-trivial batch-norm statistics and a wide head,
    saved as MMAction2 releases it (``state_dict`` + ``meta``)."""
    torch.manual_seed(seed)
    state = create_model(S4).state_dict()
    gen = torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if key.endswith('running_mean'):
            value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
        elif key.endswith('running_var'):
            value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.75)
        elif key.startswith('cls_head.fc_cls'):
            value.copy_(torch.randn(value.shape, generator=gen))
    torch.save({'state_dict': state, 'meta': {'note': 'random weights'}}, path)
    return path


def _predict(video: Path, model: str, weights: Path, out: Path) -> list[dict]:
    assert main(['predict', str(video), '--model', model, '--weights', str(weights),
                 '--views', '1,1', '--top', '5', '--threads', '2', '--json', str(out)]) == 0
    return json.loads(out.read_text())['videos'][0]['top']


def test_predict_training_and_deploy_names_agree(tmp_path):
    video = write_video(tmp_path / 'clip.mp4', moving_frames(24, 96, 128))
    checkpoint = _released_checkpoint(tmp_path / 'released.pth')
    training = _predict(video, S4, checkpoint, tmp_path / 'training.json')
    deploy = _predict(video, S4_DEPLOY, checkpoint, tmp_path / 'deploy.json')
    assert [r['label'] for r in training] == [r['label'] for r in deploy]
    assert all(r['label'] and not r['label'].startswith('class ') for r in training)
    np.testing.assert_allclose([r['prob'] for r in deploy], [r['prob'] for r in training],
                               rtol=0, atol=1e-4)
    assert training[0]['prob'] > 2 * training[-1]['prob']  # scores far from uniform


def test_finetune_then_predict(tmp_path):
    data = tmp_path / 'data'
    for name, order in (('right', 1), ('left', -1)):  # a drift and the same drift reversed
        (data / name).mkdir(parents=True)
        for i in range(3):
            frames = np.ascontiguousarray(moving_frames(16, 48, 64, seed=i)[::order])
            write_video(data / name / f'{i}.mp4', frames)
    out = tmp_path / 'ft'
    assert main(['finetune', str(data), '--model', S4, '--weights', 'none', '--size', '32',
                 '--epochs', '1', '--batch', '2', '--val-split', '0', '--workers', '0',
                 '--threads', '2', '--quiet', '--out', str(out)]) == 0
    state = torch.load(out / 'checkpoint.pth', weights_only=True)['state_dict']
    assert state['cls_head.fc_cls.weight'].shape[0] == 2
    assert any('branch_conv_list' in key for key in state)  # the training form was trained
    top = _predict(data / 'left' / '0.mp4', S4, out / 'checkpoint.pth', tmp_path / 'p.json')
    assert sorted(r['label'] for r in top) == ['left', 'right']
    assert sum(r['prob'] for r in top) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize('name', [S4, S4_DEPLOY])
def test_info_of_the_zoo_names(name, capsys):
    from tsmnet.weights.zoo import ENTRIES

    assert main(['info', name, '--no-flops', '--json', '-']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['zoo']['top1'] == ENTRIES[name].top1 == pytest.approx(74.38)
    assert info['num_classes'] == 400
    backbone = info['architecture']['backbone']
    assert backbone['type'] == 'MobileOneTSM' and backbone['arch'] == 's4'
    assert bool(backbone.get('deploy')) == (name == S4_DEPLOY)
