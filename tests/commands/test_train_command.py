"""``tsmnet train`` then ``tsmnet test`` on the checkpoint it wrote: MMAction2's own
``tools/train.py`` and ``tools/test.py`` from the installed wheel, through the commands, on the
synthetic rawframes dataset (the two-process run is in ``tests/test_engine.py``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from synthetic_video import write_config, write_rawframes

from tsmnet.cli import main
from tsmnet.commands.tools import with_cpu_runner

pytest.importorskip('mmaction')


@pytest.mark.slow
def test_train_then_test_the_checkpoint(tmp_path: Path, capsys) -> None:
    ann = write_rawframes(tmp_path / 'data', num_videos=4)
    cfg = write_config(tmp_path / 'config.py', tmp_path / 'data', ann, max_epochs=1,
                       batch_size=2)
    work = tmp_path / 'work'
    assert main(['train', str(cfg), '--work-dir', str(work)]) == 0
    ckpt = work / 'epoch_1.pth'
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)  # tsmnet's allow-list
    assert any(k.startswith('backbone.layer4.') for k in saved['state_dict'])
    assert saved['meta']['epoch'] == 1

    dump = tmp_path / 'test' / 'predictions.pkl'
    assert main(['test', str(cfg), str(ckpt), '--work-dir', str(tmp_path / 'test'),
                 '--dump', str(dump)]) == 0
    with dump.open('rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 4  # one per test clip
    assert {int(p['gt_label']) for p in predictions} == {0, 1}


def test_options_pass_through_unchanged(tmp_path: Path, capsys) -> None:
    """``tsmnet train CONFIG --help`` is tools/train.py's own help."""
    cfg = write_config(tmp_path / 'config.py', tmp_path, tmp_path / 'ann.txt')
    assert main(['train', str(cfg), '--help']) == 0
    out = capsys.readouterr().out
    assert out.startswith('usage: train.py') and '--resume' in out and '--launcher' in out


def test_cpu_runner_only_where_needed(tmp_path: Path, monkeypatch) -> None:
    cfg = write_config(tmp_path / 'config.py', tmp_path, tmp_path / 'ann.txt')
    named = write_config(tmp_path / 'named.py', tmp_path, tmp_path / 'ann.txt',
                         extra="runner_type = 'Runner'\n")
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert with_cpu_runner(str(cfg), ['--work-dir', 'w']) == ['--work-dir', 'w']
    assert with_cpu_runner(str(cfg), ['--launcher', 'pytorch']) == \
        ['--launcher', 'pytorch', '--cfg-options', 'runner_type=tsmnet.Runner']
    assert with_cpu_runner(str(cfg), ['--cfg-options', 'a=1', '--launcher=pytorch']) == \
        ['--cfg-options', 'runner_type=tsmnet.Runner', 'a=1', '--launcher=pytorch']
    assert with_cpu_runner(str(named), ['--launcher', 'pytorch']) == ['--launcher', 'pytorch']
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert with_cpu_runner(str(cfg), ['--launcher', 'pytorch']) == ['--launcher', 'pytorch']
