"""``tsmnet stream --checkpoint``: a self-describing checkpoint (``tsmnet.save``, ``tsmnet
finetune``) is read by the one checkpoint reader; one of another backbone than the options
build is refused, naming what differs; one that fits streams with its head."""

from __future__ import annotations

import tsmnet
from tsmnet.cli import main

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'


def test_stream_reads_a_saved_model(tmp_path, capsys):
    model = tsmnet.create_model(R50, depth=18, num_classes=2, shift_mode='causal')
    tsmnet.save(model, tmp_path / 'ft.pth', classes=['left', 'right'])
    argv = ['stream', '--checkpoint', str(tmp_path / 'ft.pth'), '--frames', '2', '--size', '32']
    assert main([*argv, '--depth', '50']) == 2
    assert 'holds a ResNetTSM with depth=18' in capsys.readouterr().err
    assert main([*argv, '--depth', '18']) == 0
    out = capsys.readouterr().out
    assert ' left ' in out or ' right ' in out  # the class names the checkpoint carries
