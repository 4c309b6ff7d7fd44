"""Progress over a known number of items: a live bar on a terminal, a few lines elsewhere.

On a terminal, a `rich <https://rich.readthedocs.io>`_ bar (count, rate, time left) redraws in
place. Anywhere else (a log file, CI, a pipe) a bar's redraws would be hundreds of lines, so
the same progress is written as at most ``lines`` lines (at even fractions of the total) plus
the last one.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

try:  # a dependency of MMEngine's, so present wherever tsmnet is; plain lines without it
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
except ImportError:  # pragma: no cover - rich missing
    Console = None

__all__ = ['ProgressReport']


class ProgressReport:
    """Report progress over ``total`` items on ``stream``.

    Args:
        total: the number of items.
        description: what is counted (``'videos'``).
        stream: where the progress goes (default: standard error).
        lines: the most lines written on a non-terminal (besides the last).
        live: draw a bar (default: when ``stream`` is a terminal and rich is installed).

    Example:
        >>> with ProgressReport(3, 'videos') as progress:  # doctest: +SKIP
        ...     for video in videos:
        ...         progress.advance(failed=False)
    """

    def __init__(self, total: int, description: str = 'items', stream: TextIO | None = None,
                 lines: int = 4, live: bool | None = None) -> None:
        if total < 0:
            raise ValueError(f'total must be >= 0, got {total}')
        self.total, self.description = total, description
        self.stream = stream if stream is not None else sys.stderr
        self.lines = max(lines, 1)
        if live is None:
            live = Console is not None and hasattr(self.stream, 'isatty') and self.stream.isatty()
        self.live = bool(live) and Console is not None
        self.done = self.failed = 0
        self._next_line = 1
        self._start = time.perf_counter()
        self._bar: Progress | None = None
        self._task = None

    def __enter__(self) -> ProgressReport:
        self._start = time.perf_counter()
        if self.live:
            console = Console(file=self.stream)
            self._bar = Progress(TextColumn('{task.description}'), BarColumn(),
                                 MofNCompleteColumn(), TextColumn('{task.fields[failed]}'),
                                 TimeElapsedColumn(), TextColumn('left'), TimeRemainingColumn(),
                                 console=console, transient=False,
                                 redirect_stdout=False, redirect_stderr=False)
            self._task = self._bar.add_task(self.description, total=self.total, failed='')
            self._bar.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar (its last state stays on screen)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def print(self, text: str, file: TextIO | None = None) -> None:
        """Write ``text`` and a newline to ``file`` (default: standard output) without breaking
        the bar: on the bar's terminal it is printed above the bar."""
        file = file if file is not None else sys.stdout
        if self._bar is not None and file is self.stream:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            file.write(text + '\n')
            file.flush()

    def advance(self, failed: bool = False) -> None:
        """Count one more item (``failed``: it failed)."""
        self.done += 1
        self.failed += int(failed)
        if self._bar is not None:
            self._bar.update(self._task, advance=1,
                             failed=f'{self.failed} failed' if self.failed else '')
            return
        if self.done * self.lines >= self._next_line * self.total or self.done == self.total:
            while self._next_line * self.total <= self.done * self.lines:
                self._next_line += 1
            seconds = time.perf_counter() - self._start
            failed_text = f', {self.failed} failed' if self.failed else ''
            self.stream.write(f'{self.done}/{self.total} {self.description} '
                              f'({100 * self.done / max(self.total, 1):.0f}%{failed_text}, '
                              f'{seconds:.1f} s)\n')
            self.stream.flush()
