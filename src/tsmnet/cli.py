"""The ``tsmnet`` command: one subcommand per module in :mod:`tsmnet.commands`.

Every command fails the same way: ``tsmnet COMMAND: error: ...`` on stderr, one line, exit
status 2; ``--debug`` (before or after the command) shows the traceback instead.

Only the module of the command given is imported (``tsmnet --help`` imports none, and no
command module imports torch before it runs), so help and usage errors come at once.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from ._version import __version__
from .commands.errors import CommandParser, report

# Each module defines `add_parser(subparsers)`, which registers its subcommand and sets
# `func(args) -> int` as the parser default. The one-line help of each, for `tsmnet --help`
# without importing any of them.
HELP: dict[str, str] = {
    'models': 'list the zoo: names, datasets and published top-1',
    'info': 'what a zoo model, a checkpoint or a ResNetTSM is: architecture, classes, '
            'shifts, parameters, FLOPs',
    'predict': 'classify videos with a zoo model or a checkpoint (top-K labels and '
               'probabilities)',
    'stream': 'run a causal TSM model over a video frame by frame (online TSM)',
    'export': 'export to ONNX (fp32, int8), ExecuTorch or OpenVINO, checked against eager',
    'finetune': 'fine-tune a zoo model on a folder of videos (one sub-folder per class)',
    'convert': 'convert torchvision/timm/TSM/MMAction2 weights for tsmnet and MMAction2',
    'bench': 'speed and memory ratios of the shift and ResNetTSM',
    'demo': 'TSM vs per-frame averaging on a task only temporal order can solve',
    'train': "train with MMAction2's tools/train.py (tsmnet's drop-in registered)",
    'test': "test with MMAction2's tools/test.py (tsmnet's drop-in registered)",
    'serve': 'serve a model: live WebSocket streams, uploads, a camera page',
}
COMMANDS: tuple[str, ...] = tuple(HELP)
PASS_THROUGH = ('train', 'test')  # every option after CONFIG belongs to MMAction2's script


def _chosen(argv: Sequence[str] | None) -> str | None:
    """The command named in ``argv`` (its first word that is not an option), if any."""
    for word in argv or ():
        if not word.startswith('-'):
            return word if word in HELP else None
    return None


def plain_words(text: str) -> str:
    """A command's docstring as help text: reStructuredText markup removed (``:func:`x```,
    double backquotes, ``Examples::``)."""
    # :func:`~tsmnet.models.saving.load` -> load; :func:`tsmnet.load` -> tsmnet.load
    text = re.sub(r':[a-z]+:`(~?)([^`]+)`',
                  lambda m: m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2), text)
    return text.replace('``', '').replace('::\n', ':\n')


def build_parser(argv: Sequence[str] | None = None, *, full: bool | None = None
                 ) -> argparse.ArgumentParser:
    """The ``tsmnet`` parser.

    Args:
        argv: The command line; only the parser of the command it names is built (the
            others are listed with their help). Defaults to None.
        full: Build every command's parser (what tests inspect). Defaults to None: when
            ``argv`` is None.
    """
    full = argv is None if full is None else full
    chosen = _chosen(argv)
    parser = CommandParser(
        prog='tsmnet', description='Temporal Shift Module backbones for video recognition.')
    parser.add_argument('--version', action='version', version=f'tsmnet {__version__}')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error instead of one line')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, text in HELP.items():
        if full or name == chosen:
            importlib.import_module(f'tsmnet.commands.{name}').add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=text)
    for name, sub in subparsers.choices.items():
        if sub.description:
            sub.description = plain_words(sub.description)
        if name not in PASS_THROUGH:
            # SUPPRESS: given after the command it sets the flag; absent, it keeps the global one
            sub.add_argument('--debug', action='store_true', default=argparse.SUPPRESS,
                             help='show the traceback of an error instead of one line')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tsmnet`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv, full=False).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # one line for people; --debug for the traceback
        if args.debug:
            raise
        return report(args.command, err)


if __name__ == '__main__':
    sys.exit(main())
