"""What ``tsmnet train`` and ``tsmnet test`` share: MMAction2's own script, run with tsmnet.

Both pass every option after CONFIG (and CHECKPOINT) to MMAction2's ``tools/train.py`` or
``tools/test.py`` unchanged, so ``tsmnet train CONFIG --help`` shows the script's own options.
On a machine without CUDA, ``--launcher pytorch`` (``torchrun --nproc_per_node=2 -m tsmnet
train CONFIG --launcher pytorch``) selects ``runner_type='tsmnet.Runner'`` unless the config
names a runner: MMEngine's stock Runner cannot start a process group without CUDA
(:mod:`tsmnet.engine`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..mmaction_compat import mmaction_tool, run_mmaction_tool

if TYPE_CHECKING:
    from mmengine.config import Config
from .errors import CommandError

CPU_RUNNER = 'tsmnet.Runner'


def _launcher(options: Sequence[str]) -> str:
    for i, option in enumerate(options):
        if option == '--launcher' and i + 1 < len(options):
            return options[i + 1]
        if option.startswith('--launcher='):
            return option.split('=', 1)[1]
    return 'none'


def with_cpu_runner(config: str, options: Sequence[str]) -> list[str]:
    """``options``, plus ``--cfg-options runner_type=tsmnet.Runner`` where a multi-process
    launch on a machine without CUDA needs it and the config names no runner itself."""
    import torch

    options = list(options)
    if _launcher(options) != 'pytorch' or torch.cuda.is_available():
        return options
    if 'runner_type' in read_config(config):
        return options
    if '--cfg-options' in options:  # one --cfg-options only: a second would replace the first
        i = options.index('--cfg-options')
        return [*options[:i + 1], f'runner_type={CPU_RUNNER}', *options[i + 1:]]
    return [*options, '--cfg-options', f'runner_type={CPU_RUNNER}']


def read_config(path: str) -> Config:
    """Read an MMAction2 config, or raise a ``CommandError`` that names the file."""
    from mmengine.config import Config

    try:
        return Config.fromfile(path)
    except Exception as err:  # SyntaxError, ImportError of its custom_imports, ...
        raise CommandError(f'cannot read {path} as an MMAction2 config: '
                           f'{type(err).__name__}: {err}') from err


def check_file(path: str, what: str) -> None:
    """Raise ``FileNotFoundError`` naming ``what`` unless ``path`` is a file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f'{what} not found: {path}')


def run_tool(name: str, args: argparse.Namespace) -> int:
    """Check the files, then run MMAction2's ``tools/{name}.py`` with the given options."""
    from .. import registry  # noqa: F401  (the drop-in, as custom_imports=['tsmnet'] gives it)

    check_file(args.config, 'config file')
    if not args.config.endswith('.py'):
        raise CommandError(f'CONFIG must be an MMAction2 config (.py), got {args.config}')
    positional = [args.config]
    if name == 'test':
        check_file(args.checkpoint, 'checkpoint file')
        positional.append(args.checkpoint)
    mmaction_tool(name)  # MMAction2 installed, with its tools: else one clear line
    read_config(args.config)  # its errors name the file; the script's would not
    options = with_cpu_runner(args.config, args.options)
    try:
        run_mmaction_tool(name, [*positional, *options])
    except SystemExit as done:  # the script's own argparse (--help, a bad option)
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
    return 0


def add_tool_parser(subparsers: argparse._SubParsersAction, name: str, help_text: str,
                    description: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='an MMAction2 config file (.py)')
    if name == 'test':
        parser.add_argument('checkpoint', help='the checkpoint to test (.pth)')
    parser.add_argument('options', nargs=argparse.REMAINDER,
                        help=f"options of MMAction2's tools/{name}.py, passed on unchanged "
                             f'(tsmnet {name} CONFIG --help lists them)')
    return parser
