"""Run a Python script in a process where ``import mmaction.models`` works.

The PyPI wheel of mmaction2 1.2.0 lacks ``mmaction/models/localizers/drn``; this launcher puts
the test stand-in (``mmaction_standin.py``) in place, then runs the script as ``__main__``::

    python tests/mmaction_launch.py SCRIPT [ARGS...]
    python tests/mmaction_launch.py -c CODE [ARGS...]
    torchrun --nproc_per_node=2 tests/mmaction_launch.py .../mmaction/.mim/tools/train.py CFG \\
        --launcher pytorch

Test-only. ``DumpParamsHook`` (registered in MMEngine's root ``HOOKS``) lets a config ask every
rank to save its model's parameters and buffers, for checks across ranks.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

sys.path.insert(0, str(Path(__file__).parent))

from mmaction_standin import install_drn_standin  # noqa: E402


@HOOKS.register_module(force=True)
class DumpParamsHook(Hook):
    """Save ``{'params': ..., 'buffers': ...}`` of this rank to ``work_dir/rank{R}_{when}.pt``.

    Args:
        out_dir: Folder for the files.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def _dump(self, runner, when: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {
            'params': {k: v.detach().clone() for k, v in model.named_parameters()},
            'buffers': {k: v.detach().clone() for k, v in model.named_buffers()},
            'world_size': runner.world_size,
        }
        os.makedirs(self.out_dir, exist_ok=True)
        torch.save(state, os.path.join(self.out_dir, f'rank{runner.rank}_{when}.pt'))

    def before_train(self, runner) -> None:
        self._dump(runner, 'before')

    def after_train(self, runner) -> None:
        self._dump(runner, 'after')


def main() -> None:
    if len(sys.argv) < 2 or (sys.argv[1] == '-c' and len(sys.argv) < 3):
        raise SystemExit('usage: mmaction_launch.py SCRIPT|-c CODE [ARGS...]')
    install_drn_standin()
    if sys.argv[1] == '-c':
        code = sys.argv[2]
        sys.argv = ['-c', *sys.argv[3:]]
        exec(compile(code, '<mmaction_launch -c>', 'exec'), {'__name__': '__main__'})
        return
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
