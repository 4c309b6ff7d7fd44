"""``tsmnet test CONFIG CHECKPOINT [options]``: MMAction2's own ``tools/test.py``, from the
installed wheel, with tsmnet imported and the wheel's missing module stood in for.

Examples::

    tsmnet test CONFIG work_dirs/NAME/epoch_50.pth --work-dir w --dump results.pkl
    torchrun --nproc_per_node=2 -m tsmnet test CONFIG CHECKPOINT --launcher pytorch

Every option after CHECKPOINT goes to ``tools/test.py``. With tsmnet imported, checkpoints that
``tsmnet train`` (MMEngine's Runner) wrote load under ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse

from .tools import add_tool_parser, run_tool


def run(args: argparse.Namespace) -> int:
    return run_tool('test', args)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_tool_parser(subparsers, 'test', "test a checkpoint with MMAction2's "
                             'tools/test.py', __doc__)
    parser.set_defaults(func=run)
