"""The options every command spells the same way, and the old spellings they replace.

``--model NAME`` (a zoo entry), ``--weights PATH|URL`` (a checkpoint or saved-model folder),
``--size N``, ``--threads N``, ``--device DEV`` and ``--json PATH|-`` (``-``: stdout). An old
spelling (``--checkpoint``...) still works and says, on stderr, which one replaces it. This
module imports nothing heavy: ``tsmnet CMD --help`` must not load torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import CommandError

# the zoo model a command starts from when --model is not given (a ResNet-50 on Kinetics-400)
DEFAULT_MODEL = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'

__all__ = ['DEFAULT_MODEL', 'DeprecatedAlias', 'add_deprecated', 'add_json', 'add_model',
           'add_threads', 'add_weights', 'set_threads', 'write_json']


class DeprecatedAlias(argparse.Action):
    """Stores the value under the new option's ``dest`` and says, on stderr, that the old
    spelling is deprecated."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = '',
                 **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f'{parser.prog}: {option_string} is deprecated; use {self.new}', file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str) -> None:
    """``old`` as a hidden alias of the option ``new`` (stored in ``dest``)."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, help=argparse.SUPPRESS)


def add_model(parser: argparse.ArgumentParser, default: str | None = None,
              what: str = 'the model') -> None:
    shown = f' (default: {default})' if default else ''
    parser.add_argument('--model', metavar='NAME', default=default,
                        help=f'{what}: a zoo name (tsmnet models lists them){shown}')


def add_weights(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument('--weights', metavar='PATH|URL', help=help)


def add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--threads', type=int, default=None, metavar='N',
                        help="CPU threads of torch (default: torch's choice)")


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument('--json', dest='json_path', metavar='PATH|-',
                        help=f'write {what} as JSON to PATH (-: to stdout)')


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` (None: unchanged)."""
    if threads is None:
        return
    if threads < 1:
        raise CommandError(f'--threads must be >= 1, got {threads}')
    import torch  # the command runs: the library may load now

    torch.set_num_threads(threads)


def write_json(path: str | None, text: str) -> None:
    """Write JSON ``text`` to ``path``; ``'-'`` writes it to stdout; None writes nothing."""
    if path is None:
        return
    if path == '-':
        sys.stdout.write(text if text.endswith('\n') else text + '\n')
        sys.stdout.flush()
    else:
        from ..fileio import write_text  # imports torch: only when a command writes

        write_text(Path(path), text if text.endswith('\n') else text + '\n')
