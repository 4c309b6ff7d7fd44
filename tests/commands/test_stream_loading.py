"""``tsmnet stream --weights``: the model comes from the one loader (tsmnet.predictor); a
self-describing checkpoint streams with its head, class names and protocol; deprecated
structure options that contradict it are refused, naming what differs; a bidirectionally
trained model streams causally only with a warning."""

from __future__ import annotations

import json
import logging

import pytest

import tsmnet
from tsmnet.cli import main

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp('stream_loading')
    for mode in ('causal', 'bidirectional'):
        model = tsmnet.create_model(R50, depth=18, num_classes=2, shift_mode=mode)
        model.protocol = model.protocol.with_views(1, 1)
        tsmnet.save(model, root / f'{mode}.pth', classes=['left', 'right'])
    return root


def test_stream_reads_a_saved_model(saved, capsys):
    argv = ['stream', '--weights', str(saved / 'causal.pth'), '--frames', '2', '--size', '32']
    assert main([*argv, '--depth', '50']) == 2
    err = capsys.readouterr().err
    assert '--depth is deprecated; use --backbone resnet50' in err
    assert 'holds a ResNetTSM with depth=18' in err
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert ' left ' in out or ' right ' in out  # the class names the checkpoint carries
    assert 'causal.pth: a causal ResNetTSM-18 of 2 classes' in out


def test_stream_takes_the_protocol_of_the_checkpoint(saved, capsys):
    """No --size: the checkpoint's crop, mean and std (its protocol), not 224."""
    protocol = tsmnet.load(saved / 'causal.pth').protocol
    assert main(['stream', '--weights', str(saved / 'causal.pth'), '--frames', '1',
                 '--json', '-', '--quiet']) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['size'] == protocol.crop_size


def test_the_consensus_window_is_the_models_T(tmp_path, capsys):
    """No --smooth: the last T frames, the offline model's consensus (T=4 here, not 8)."""
    model = tsmnet.create_model(R50, depth=18, num_classes=2, num_segments=4,
                                shift_mode='causal')
    tsmnet.save(model, tmp_path / 't4.pth', classes=['left', 'right'])
    assert main(['stream', '--weights', str(tmp_path / 't4.pth'), '--frames', '6', '--size',
                 '32', '--quiet', '--json', '-']) == 0
    frames = json.loads(capsys.readouterr().out)['frames']
    assert [f['window'] for f in frames] == [1, 2, 3, 4, 4, 4]


def test_old_checkpoint_spelling_still_works(saved, capsys):
    assert main(['stream', '--checkpoint', str(saved / 'causal.pth'), '--frames', '1',
                 '--size', '32', '--quiet']) == 0
    assert '--checkpoint is deprecated; use --weights' in capsys.readouterr().err


def test_a_bidirectional_model_streams_with_a_warning(saved, caplog, capsys):
    with caplog.at_level(logging.WARNING, logger='tsmnet.predictor'):
        assert main(['stream', '--weights', str(saved / 'bidirectional.pth'), '--frames', '1',
                     '--size', '32', '--quiet']) == 0
    assert "trained with shift_mode='bidirectional'" in caplog.text
    assert 'another model' in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='tsmnet.predictor'):
        assert main(['stream', '--weights', str(saved / 'causal.pth'), '--frames', '1',
                     '--size', '32', '--quiet']) == 0
    assert 'shift_mode' not in caplog.text


def test_model_and_onnx_exclude_each_other(saved, capsys):
    assert main(['stream', '--onnx', 'x.onnx', '--model', R50]) == 2
    assert 'exclude each other' in capsys.readouterr().err
