"""Two-process DDP through MMEngine's Runner: ``torchrun --nproc_per_node=2 -m tsmnet train CONFIG
--launcher pytorch`` runs MMAction2's own ``tools/train.py``, which on a CPU-only machine gets
``runner_type='tsmnet.Runner'`` (gloo) from ``tsmnet train``. Both ranks end with the same
parameters although each trained on its own half of the data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic_video import write_config, write_rawframes

import tsmnet  # noqa: F401  (allow-lists what MMEngine checkpoints hold, for weights_only=True)

pytest.importorskip('mmaction')

HELPERS = Path(__file__).resolve().parent  # dump_params_hook.py


@pytest.mark.slow
def test_torchrun_two_processes_keep_parameters_in_sync(tmp_path: Path) -> None:
    ann = write_rawframes(tmp_path / 'data', num_videos=8)
    dump = tmp_path / 'ranks'
    cfg = write_config(
        tmp_path / 'config.py', tmp_path / 'data', ann, max_epochs=2, batch_size=2,
        extra=("custom_imports = dict(imports=['tsmnet', 'dump_params_hook'], "
               "allow_failed_imports=False)\n"
               # a GPU setting: tsmnet.Runner turns SyncBN into BatchNorm on CPUs
               "model['backbone']['norm_cfg'] = dict(type='SyncBN', requires_grad=True)\n"
               f"custom_hooks = [dict(type='DumpParamsHook', out_dir={str(dump)!r})]\n"))
    work_dir = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(HELPERS), os.environ.get('PYTHONPATH', '')]))
    env.pop('CUDA_VISIBLE_DEVICES', None)
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
         '-m', 'tsmnet', 'train', str(cfg), '--launcher', 'pytorch',
         '--work-dir', str(work_dir)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    # exit code 0 also shows the clean teardown (torch 2.13 aborts a process that exits with a
    # live process group)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-6000:])
    assert 'SyncBN needs GPUs' in proc.stdout, proc.stderr[-3000:]  # logged by rank 0

    def load(rank: int, when: str) -> dict:
        return torch.load(dump / f'rank{rank}_{when}.pt', weights_only=True)

    before = [load(r, 'before') for r in (0, 1)]
    after = [load(r, 'after') for r in (0, 1)]
    assert [s['world_size'] for s in after] == [2, 2]
    params = after[0]['params']
    assert params.keys() == after[1]['params'].keys()
    assert any(k.startswith('backbone.') for k in params)
    for k in params:
        assert torch.equal(before[0]['params'][k], before[1]['params'][k]), k  # DDP broadcast
        assert torch.equal(params[k], after[1]['params'][k]), k  # gradients all-reduced
    assert any(not torch.equal(before[0]['params'][k], params[k]) for k in params)  # trained
    # the ranks saw different clips: BatchNorm statistics (not synchronised) differ
    running = [k for k in after[0]['buffers'] if k.endswith('running_mean')]
    assert any(not torch.equal(after[0]['buffers'][k], after[1]['buffers'][k]) for k in running)

    ckpt = torch.load(work_dir / 'epoch_2.pth', map_location='cpu', weights_only=True)
    for k, v in params.items():
        assert torch.equal(ckpt['state_dict'][k], v), k
