"""``tsmnet finetune`` end to end on videos the test writes: the demo's motion task (a clip
and the same clip played backwards have opposite labels) saved as files. TSM learns it, TSN
(the same network without shift) cannot; the checkpoint loads into ``tsmnet predict`` and into
MMAction2's ``Recognizer2D``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from video_files import write_video

from tsmnet.cli import main
from tsmnet.demo.data import MotionDirection

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
PAIRS = 40


def write_motion_videos(root: Path, pairs: int = PAIRS, seed: int = 0) -> Path:
    """``root/moves right/*.mp4`` and ``root/moves left/*.mp4``: each clip also reversed."""
    clips, labels = MotionDirection(size=32, num_frames=8, seed=seed).sample_pairs(pairs)
    frames = (clips.permute(0, 1, 3, 4, 2) * 255).round().to(torch.uint8).numpy()
    for i, (clip, label) in enumerate(zip(frames, labels.tolist())):
        folder = root / MotionDirection.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / f'clip{i % pairs:03d}.mp4', clip, options={'qp': '0'})
    return root


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> Path:
    return write_motion_videos(tmp_path_factory.mktemp('motion'))


def _finetune(data_dir: Path, out: Path, *extra: str) -> dict:
    args = ['finetune', str(data_dir), '--model', R50, '--weights', 'none', '--depth', '18',
            '--size', '32', '--epochs', '8', '--batch', '8', '--dropout', '0', '--val-split',
            '0.25', '--out', str(out), '--quiet', '--threads', '2', '--workers', '0', *extra]
    assert main(args) == 0
    return json.loads((out / 'history.json').read_text())


@pytest.mark.slow
def test_tsm_learns_the_order_tsn_cannot(data_dir, tmp_path, capsys):
    tsm = _finetune(data_dir, tmp_path / 'tsm')
    tsn = _finetune(data_dir, tmp_path / 'tsn', '--no-shift')
    tsm_acc = max(r['val_acc'] for r in tsm['history'])
    tsn_acc = max(r['val_acc'] for r in tsn['history'])
    assert tsm['val_videos'] == 20 and tsm['train_videos'] == 60
    assert tsm_acc >= 0.9, tsm['history']  # the demo's TSM: 1.0
    assert tsn_acc <= 0.65, tsn['history']  # blind to order: at or below chance
    assert (tmp_path / 'tsm' / 'labels.txt').read_text() == 'moves left\nmoves right\n'
    assert (tmp_path / 'tsm' / 'finetune.png').stat().st_size > 1000
    assert 'final val acc' in capsys.readouterr().out

    # tsmnet predict --weights reads the checkpoint, its architecture and its class names
    video = sorted((data_dir / 'moves left').iterdir())[0]
    out = tmp_path / 'pred.json'
    assert main(['predict', str(video), '--model', R50, '--weights',
                 str(tmp_path / 'tsm' / 'checkpoint.pth'), '--json', str(out)]) == 0
    top = json.loads(out.read_text())['videos'][0]['top']
    assert {t['label'] for t in top} == {'moves left', 'moves right'}


@pytest.mark.slow
def test_checkpoint_loads_into_mmaction(data_dir, tmp_path, mmaction_models):
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import tsmnet

    _finetune(data_dir, tmp_path / 'ft', '--epochs', '1')
    ckpt = tmp_path / 'ft' / 'checkpoint.pth'
    init_default_scope('mmaction')
    theirs = mmaction_models.MODELS.build(dict(
        type='Recognizer2D',
        backbone=dict(type='mmaction.ResNetTSM', depth=18, num_segments=8, pretrained=None),
        cls_head=dict(type='TSMHead', num_classes=2, in_channels=512, num_segments=8,
                      dropout_ratio=0.0, average_clips='prob'),
        data_preprocessor=dict(type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], format_shape='NCHW')))
    load_checkpoint(theirs, str(ckpt), strict=True)
    ours = tsmnet.load(str(ckpt))  # the checkpoint describes its model
    clips = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        theirs.eval()
        want = theirs.cls_head(theirs.extract_feat(clips, test_mode=True)[0], num_segs=8)
        got = ours.eval()(clips)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize('layout,message', [
    ({}, 'must hold at least 2 class sub-folders'),
    ({'a': ['x.mp4'], 'b': []}, 'holds no videos'),
    ({'a': ['x.mp4'], 'b': ['y.txt']}, 'holds no videos'),
])
def test_bad_data_dir_fails_in_one_line(layout, message, tmp_path, capsys):
    for name, files in layout.items():
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f).write_bytes(b'')
    assert main(['finetune', str(tmp_path), '--model', R50, '--weights', 'none']) == 2
    err = capsys.readouterr().err
    assert err.startswith('tsmnet finetune: error: ') and err.count('\n') == 1 and message in err


def test_bad_options_fail_in_one_line(data_dir, tmp_path, capsys):
    for args, message in [(['--epochs', '0'], '--epochs must be an integer >= 1'),
                          (['--val-split', '1.5'], '--val-split must be in [0, 1)'),
                          (['--workers', '-1'], '--workers must be an integer >= 0'),
                          (['--resume', '--out', str(tmp_path / 'new')],
                           '--resume: no '),
                          (['--depth', '18'], '--depth and --no-shift change the architecture'),
                          (['--model', 'nothing-like-this', '--weights', 'none'],
                           'unknown model name'),
                          ([str(tmp_path / 'nowhere')], 'DATA_DIR is not a folder')]:
        argv = ['finetune', *(args if args[0].startswith('/') else [str(data_dir), *args])]
        assert main(argv) == 2, args
        err = capsys.readouterr().err
        assert err.startswith('tsmnet finetune: error: ') and message in err, err


def test_video_folder_split_is_stratified(data_dir):
    from tsmnet.data import from_folder

    folder = from_folder(data_dir)
    assert folder.classes == ('moves left', 'moves right') and len(folder.paths) == 2 * PAIRS
    train, val = folder.split(0.25, seed=0)
    assert sorted(train.paths + val.paths) == sorted(folder.paths)
    labels = np.asarray(val.labels)
    assert (labels == 0).sum() == (labels == 1).sum() == 10


def test_partial_bn_freezes_all_but_the_first_norm():
    from torch import nn

    from tsmnet.train import apply_partial_bn
    from tsmnet.train.model import build_architecture

    model = build_architecture(R50, 2, depth=18).train()
    apply_partial_bn(model)
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms[0].training and norms[0].weight.requires_grad
    assert not any(n.training or n.weight.requires_grad for n in norms[1:])
    assert model.cls_head.fc_cls.weight.requires_grad
