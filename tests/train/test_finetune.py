"""``tsmnet.train.finetune`` on videos the tests write: resume continues a run exactly, ``--amp``
and ``--shift-mode causal`` train, and torchrun's processes (two on one machine, or two
"nodes" on loopback) end an epoch with the weights one process reaches on the same global
batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.cli import main
from tsmnet.train import FinetuneConfig, finetune

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
# One process with --batch 4 and two with --batch 2 (SGD, frozen BN, dropout 0) differ by the
# order of float sums only: measured 1.5e-8 (largest weight difference after one epoch of 4
# steps, two processes and two nodes alike); a step on other clips moves weights by about lr
# (1e-4 to 1e-3 here). With AdamW the same runs differ by 2.3e-4: Adam turns float noise in
# near-zero gradients into steps of about +-lr, so the comparison uses SGD.
DDP_BOUND = 1e-6


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('videos')
    for k, name in enumerate(['left', 'right']):
        (root / name).mkdir()
        for i in range(8):
            frames = moving_frames(10 + i, 36, 48, seed=10 * k + i)
            write_video(root / name / f'{i}.mp4', frames[:, :, ::-1] if k else frames)
    return root


def _config(data_dir: Path, out: Path, **changes) -> FinetuneConfig:
    base = dict(data_dir=str(data_dir), model=R50, weights='none', depth=18, size=32, epochs=2,
                batch=4, dropout=0.0, val_split=0.0, out=str(out), workers=0, frozen_bn=True)
    return FinetuneConfig(**{**base, **changes})


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def _largest_difference(a: Path, b: Path) -> float:
    x, y = _weights(a), _weights(b)
    assert x.keys() == y.keys()
    return max((x[k].double() - y[k].double()).abs().max().item() for k in x
               if x[k].is_floating_point())


class _Stop(Exception):
    pass


@pytest.mark.slow
def test_resume_continues_the_run_exactly(data_dir, tmp_path):
    whole = finetune(_config(data_dir, tmp_path / 'whole', dropout=0.5, frozen_bn=False))

    def stop(record):
        raise _Stop
    with pytest.raises(_Stop):  # interrupted after epoch 1: last.pth holds it
        finetune(_config(data_dir, tmp_path / 'cut', dropout=0.5, frozen_bn=False),
                 on_epoch=stop)
    assert not (tmp_path / 'cut' / 'checkpoint.pth').exists()
    resumed = finetune(_config(data_dir, tmp_path / 'cut', dropout=0.5, frozen_bn=False,
                               resume='auto'))
    assert [r.epoch for r in resumed.history] == [1, 2]
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in whole.history]
    assert _largest_difference(tmp_path / 'whole' / 'last.pth',
                               tmp_path / 'cut' / 'last.pth') == 0
    for name in ('checkpoint.pth', 'best.pth', 'labels.txt', 'history.json'):
        assert (tmp_path / 'cut' / name).is_file()


@pytest.mark.slow
def test_amp_and_causal_shift_train_and_predict_reads_them(data_dir, tmp_path):
    result = finetune(_config(data_dir, tmp_path / 'ft', epochs=1, amp=True,
                              shift_mode='causal', workers=1))
    assert result.history[0].train_loss > 0
    meta = torch.load(tmp_path / 'ft' / 'checkpoint.pth', weights_only=True)['meta']
    backbone = meta['tsmnet']['architecture']['backbone']  # self-describing (tsmnet.save's)
    assert (backbone['depth'], backbone['shift_mode']) == (18, 'causal')
    assert meta['tsmnet']['class_names'] == ['left', 'right']
    assert meta['tsmnet']['protocol']['crop_size'] == 32
    video = sorted((data_dir / 'left').iterdir())[0]
    assert main(['predict', str(video), '--model', R50, '--weights',
                 str(tmp_path / 'ft' / 'checkpoint.pth')]) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _torchrun(*args: str, out: Path, data_dir: Path, batch: int) -> subprocess.Popen:
    command = [sys.executable, '-m', 'torch.distributed.run', *args, '-m', 'tsmnet',
               'finetune', str(data_dir), '--model', R50, '--weights', 'none', '--depth', '18',
               '--size', '32', '--epochs', '1', '--batch', str(batch), '--dropout', '0',
               '--val-split', '0', '--frozen-bn', '--optimizer', 'sgd', '--workers', '1',
               '--threads', '1',
               '--quiet', '--out', str(out)]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_two_processes_reach_one_process_weights(data_dir, tmp_path):
    assert main(['finetune', str(data_dir), '--model', R50, '--weights', 'none', '--depth',
                 '18', '--size', '32', '--epochs', '1', '--batch', '4', '--dropout', '0',
                 '--val-split', '0', '--frozen-bn', '--optimizer', 'sgd', '--workers', '0',
                 '--quiet', '--out',
                 str(tmp_path / 'one')]) == 0
    output = _finish(_torchrun('--nproc_per_node', '2', '--master-port', str(_free_port()),
                               out=tmp_path / 'two', data_dir=data_dir, batch=2))
    assert output.count('wrote ') == 1  # rank 0 alone writes and prints
    assert _largest_difference(tmp_path / 'one' / 'last.pth',
                               tmp_path / 'two' / 'last.pth') < DDP_BOUND
    # two "nodes" on loopback, one process each: the multi-node form of docs/training.md
    endpoint = f'127.0.0.1:{_free_port()}'
    nodes = [_torchrun('--nnodes', '2', '--node-rank', str(rank), '--nproc_per_node', '1',
                       '--rdzv-backend', 'c10d', '--rdzv-endpoint', endpoint,
                       '--rdzv-id', 'tsmnet-test', out=tmp_path / 'nodes', data_dir=data_dir,
                       batch=2) for rank in range(2)]
    outputs = [_finish(p) for p in nodes]
    assert sum(o.count('wrote ') for o in outputs) == 1
    assert _largest_difference(tmp_path / 'one' / 'last.pth',
                               tmp_path / 'nodes' / 'last.pth') < DDP_BOUND
