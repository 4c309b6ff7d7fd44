"""The ``tsmnet`` command: one subcommand per module in :mod:`tsmnet.commands`.

Every command fails the same way: ``tsmnet COMMAND: error: ...`` on stderr, one line, exit
status 2; ``--debug`` (before or after the command) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .commands.errors import CommandParser, report

# Each module defines `add_parser(subparsers)`, which registers its subcommand and sets
# `func(args) -> int` as the parser default.
COMMANDS: tuple[str, ...] = ('demo', 'info', 'convert', 'bench', 'stream', 'train', 'test',
                             'predict', 'finetune', 'export', 'serve')
PASS_THROUGH = ('train', 'test')  # every option after CONFIG belongs to MMAction2's script


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog='tsmnet', description='Temporal Shift Module backbones for video recognition.')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error instead of one line')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in COMMANDS:
        importlib.import_module(f'tsmnet.commands.{name}').add_parser(subparsers)
    for name, sub in subparsers.choices.items():
        if name not in PASS_THROUGH:
            # SUPPRESS: given after the command it sets the flag; absent, it keeps the global one
            sub.add_argument('--debug', action='store_true', default=argparse.SUPPRESS,
                             help='show the traceback of an error instead of one line')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tsmnet`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
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
