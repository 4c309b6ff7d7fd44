"""``tsmnet train CONFIG [options]``: MMAction2's own ``tools/train.py``, from the installed
wheel, with tsmnet imported and the wheel's missing module stood in for.

Examples::

    tsmnet train configs/tsm/tsm_tsmnet-r50_8xb16-1x1x8-50e_kinetics400-rgb.py --work-dir w
    torchrun --nproc_per_node=2 -m tsmnet train CONFIG --launcher pytorch

Every option after CONFIG goes to ``tools/train.py`` (``--work-dir``, ``--resume``, ``--amp``,
``--cfg-options``, ``--launcher``...). Without CUDA, ``--launcher pytorch`` uses
``runner_type='tsmnet.Runner'`` (gloo) unless the config names a runner.
"""

from __future__ import annotations

import argparse

from .tools import add_tool_parser, run_tool


def run(args: argparse.Namespace) -> int:
    return run_tool('train', args)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_tool_parser(subparsers, 'train', "train with MMAction2's tools/train.py",
                             __doc__)
    parser.set_defaults(func=run)
