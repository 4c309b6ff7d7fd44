"""The options every command spells the same way, and the old spellings they replace.

``--model NAME`` (a zoo entry), ``--weights PATH|URL`` (a checkpoint or saved-model folder),
``--size N``, ``--threads N``, ``--device DEV`` and ``--json PATH|-`` (``-``: stdout). An old
spelling (``--checkpoint``...) still works and says, on stderr, which one replaces it. This
module imports nothing heavy: ``tsmnet CMD --help`` must not load torch.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import CommandError

# the zoo model a command starts from when --model is not given (a ResNet-50 on Kinetics-400)
DEFAULT_MODEL = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'

__all__ = ['DEFAULT_MODEL', 'DeprecatedAlias', 'add_deprecated', 'add_json', 'add_model',
           'add_runtime', 'add_threads', 'add_weights', 'library_errors', 'predictor',
           'set_threads',
           'threads', 'write_json']
# the library names the parameter a bad value came in (``weights: no such file``); these are
# the options that carry them
_PARAMETERS = ('model', 'weights', 'labels', 'views', 'calibration', 'size')


class DeprecatedAlias(argparse.Action):
    """Stores the value under the new option's ``dest`` and says, on stderr, that the old
    spelling is deprecated."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = '',
                 **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        new = self.new.format(values)  # '--backbone resnet{}' names the value given
        print(f'{parser.prog}: {option_string} is deprecated; use {new}', file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str,
                   **kwargs: Any) -> None:
    """``old`` as a hidden alias of the option ``new`` (stored in ``dest``; ``kwargs``: its
    ``type``, ``choices``...)."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new=new, help=argparse.SUPPRESS,
                        **kwargs)


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


def add_runtime(parser: argparse.ArgumentParser, what: str = 'the model') -> None:
    """``--runtime`` and ``--precision`` (:mod:`tsmnet.deploy.runtime`)."""
    parser.add_argument('--runtime', default='eager',
                        choices=('eager', 'compile', 'onnxruntime', 'openvino'),
                        help=f'what runs {what}: PyTorch (eager), torch.compile, or {what} '
                             'exported to ONNX Runtime or OpenVINO at the input size and '
                             'checked against eager first (default: eager)')
    parser.add_argument('--precision', default=None, choices=('fp32', 'bf16', 'int8'),
                        help="the runtime's precision where it has it (default: fp32)")


@contextlib.contextmanager
def library_errors() -> Iterator[None]:
    """A library error that names its parameter (``weights: ...``) as the option's
    (``--weights: ...``); an unknown zoo name as ``--model``'s. Other errors pass."""
    try:
        yield
    except (ValueError, FileNotFoundError, KeyError) as err:
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        if type(err).__name__ == 'UnknownModelError':
            raise CommandError(f'--model: {text}') from None
        match = re.match(rf'({"|".join(_PARAMETERS)})[ :]', text)
        if match is None:
            raise
        raise CommandError(f'--{text}') from None


def predictor(model: str | None, weights: str | None, labels: str | None = None, *,
              causal: bool = False, views: str | None = None, **kwargs: Any) -> Any:
    """The :class:`tsmnet.predictor.Predictor` of ``--model``, ``--weights``, ``--labels``
    (``--views``): the model by :func:`tsmnet.predictor.load_model`, then the runner of
    ``--runtime``/``--precision`` (``kwargs``: the Predictor's), errors named by option."""
    from ..predictor import Predictor, class_labels, load_model, parse_views
    from ..video import TestProtocol

    with library_errors():
        views_of = parse_views(views)
        model = load_model(model, weights, causal=causal)
        names = class_labels(model, weights, labels)
    protocol = (model.protocol or TestProtocol()).with_views(*views_of)
    try:
        return Predictor(model, protocol, names, **kwargs)
    except ValueError as err:  # a runtime or precision it does not have, int8 uncalibrated
        raise CommandError(f'--runtime/--precision: {err}') from None


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``n`` while the command runs (None: unchanged)."""
    import torch  # the command runs: the library may load now

    previous = torch.get_num_threads()
    set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
