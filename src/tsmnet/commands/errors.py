"""The one way a ``tsmnet`` command fails: ``tsmnet COMMAND: error: ...``, exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EXIT_ERROR = 2  # argparse's status for a bad command line; every command uses it


class CommandError(Exception):
    """Bad input to a command (a value, a file): printed as one line, exit status 2."""


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (its type name when it has no message)."""
    text = ' '.join(str(err).split()) if str(err).strip() else ''
    if isinstance(err, KeyError) and len(err.args) == 1:
        text = str(err.args[0])
    if isinstance(err, (CommandError, ValueError, OSError, TypeError)) and text:
        return text
    return f'{type(err).__name__}: {text}' if text else type(err).__name__


def report(command: str, err: BaseException) -> int:
    """Print ``tsmnet COMMAND: error: MESSAGE`` on stderr; return the exit status 2."""
    print(f'tsmnet {command}: error: {one_line(err)}', file=sys.stderr)
    return EXIT_ERROR
