"""``tsmnet info``: structure, shift positions, parameters and FLOPs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tsmnet
from tsmnet.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def info(capsys, *argv: str) -> dict:
    assert main(['info', *argv, '--json']) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_arguments_r18(capsys) -> None:
    out = info(capsys, '--depth', '18', '--num-segments', '4', '--size', '32')
    model = tsmnet.ResNetTSM(18, num_segments=4, pretrained=None)
    assert out['parameters'] == sum(p.numel() for p in model.parameters())
    # blockres: one shift per block, on the input of its first conv, C // 8 channels each way
    assert [s['module'] for s in out['shifts']] == [
        f'layer{i}.{b}.conv1.conv' for i in range(1, 5) for b in range(2)]
    for s in out['shifts']:
        assert s['fold'] == s['channels'] // 8 and s['directions'] == 2
    assert out['stages']['layer3'] == dict(blocks=2, shifts=2)

    # the shift is free: same FLOPs as the plain ResNet; FLOPs grow linearly with T
    plain = info(capsys, '--depth', '18', '--num-segments', '4', '--size', '32', '--no-shift')
    assert plain['shifts'] == [] and plain['flops'] == out['flops']
    double = info(capsys, '--depth', '18', '--num-segments', '8', '--size', '32')
    assert double['flops']['per_clip'] == 2 * out['flops']['per_clip']
    assert double['parameters'] == out['parameters']


def test_causal_block_shift(capsys) -> None:
    out = info(capsys, '--depth', '18', '--num-segments', '4', '--shift-place', 'block',
               '--shift-mode', 'causal', '--no-flops')
    assert 'flops' not in out
    assert out['shifts'][0]['module'] == 'layer1.0'
    assert {s['directions'] for s in out['shifts']} == {1}


def test_config_files(capsys) -> None:
    nl = info(capsys, str(next(CONFIGS.rglob('*nl-gaussian*.py'))), '--no-flops')
    assert nl['non_local_blocks'] == ['layer2.0', 'layer2.2', 'layer3.0', 'layer3.2',
                                      'layer3.4']  # MMAction2's TSM-NL placement
    pool = info(capsys, str(next(CONFIGS.rglob('*temporal-pool*.py'))), '--no-flops')
    assert pool['temporal_pools'] == [dict(module='layer2', frames_in=8, frames_out=4)]
    assert pool['shifts'][3]['module'] == 'layer2.net.0.conv1.conv'
    tpn = info(capsys, str(next(CONFIGS.rglob('tpn-*.py'))), '--no-flops')
    assert tpn['architecture']['out_indices'] == [2, 3]


def test_mmaction_config_describes_like_ours(capsys) -> None:
    mmaction = pytest.importorskip('mmaction')
    name = 'tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py'
    theirs = Path(mmaction.__path__[0]) / '.mim' / 'configs' / 'recognition' / 'tsm' / name
    ours = next(CONFIGS.rglob('tsm_tsmnet-r50_8xb16-1x1x16-50e_sthv2-rgb.py'))
    a = info(capsys, str(theirs), '--no-flops')
    b = info(capsys, str(ours), '--no-flops')
    assert a['architecture']['num_segments'] == 16
    assert a['architecture'] == b['architecture'] and a['shifts'] == b['shifts']


def test_rejects_config_without_resnet_tsm(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / 'tsn.py'
    cfg.write_text("model = dict(type='Recognizer2D', backbone=dict(type='ResNet', depth=50))\n")
    assert main(['info', str(cfg)]) == 2
    assert "got 'ResNet'" in capsys.readouterr().err


@pytest.mark.slow
def test_r50_flops_match_mmaction_model_zoo(capsys) -> None:
    """MMAction2 lists 32.88 GFLOPs for TSM R50 1x1x8 (224x224, recognizer with 400 classes);
    the head's fc adds 8 x 2048 x 400."""
    out = info(capsys, '--depth', '50', '--num-segments', '8')
    total = out['flops']['per_clip'] + 8 * 2048 * 400
    assert round(total / 1e9, 2) == 32.88
    assert out['parameters'] == 25_557_032 - 2_049_000  # torchvision's resnet50 minus its fc


def test_backends(capsys) -> None:
    assert main(['info', '--backends', '--json']) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == tsmnet.shift.backend_status()
    assert main(['info', '--backends']) == 0
    text = capsys.readouterr().out
    assert text.startswith('shift backends (auto prefers triton > native > torch > functional')
    assert '  torch      available' in text and '  functional available' in text
