"""The ``tsmnet`` command: one subcommand per module in :mod:`tsmnet.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines `add_parser(subparsers)`, which registers its subcommand and sets
# `func(args) -> int` as the parser default. Heavy imports happen inside `func` only.
COMMANDS: tuple[str, ...] = ('demo', 'info', 'convert', 'bench', 'stream')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='tsmnet', description='Temporal Shift Module backbones for video recognition.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in COMMANDS:
        importlib.import_module(f'tsmnet.commands.{name}').add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
