"""Standard output reserved for results: ``--json -`` and the like stay parseable.

When a command writes its results to standard output (``tsmnet predict --jsonl -``), anything
else that writes there (MMEngine's logger, which logs to stdout, a ``print`` in a library)
would corrupt them. :func:`results_stdout` points file descriptor 1, and ``sys.stdout``, at
standard error for the duration, and hands the command the real standard output alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

__all__ = ['results_stdout']


@contextlib.contextmanager
def results_stdout(wanted: bool = True) -> Iterator[TextIO]:
    """Reserve standard output for results while the block runs.

    Args:
        wanted: False yields ``sys.stdout`` unchanged (the caller writes no results there).

    Yields:
        The stream the results go to (the original standard output); inside the block every
        other write to standard output reaches standard error.
    """
    results = sys.stdout
    if not wanted:
        yield results
        return
    try:
        fd = results.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture): swap objects
        fd = None
    sys.stdout = sys.stderr
    if fd is None:
        try:
            yield results
        finally:
            sys.stdout = results
        return
    results.flush()
    saved = os.dup(fd)
    sys.stderr.flush()
    os.dup2(sys.stderr.fileno(), fd)  # file descriptor 1 now reaches standard error
    stream = os.fdopen(saved, 'w', encoding='utf-8', newline='')
    try:
        yield stream
    finally:
        stream.flush()
        os.dup2(saved, fd)
        stream.close()
        sys.stdout = results
