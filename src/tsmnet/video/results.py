"""Writing per-video results as they come: JSON, JSON Lines, CSV; a file or standard output.

Each writer is opened before the first video is scored and writes (and flushes) a video's
row as soon as it arrives, so a long run can be followed (``tail -f``) and what was scored
survives an interrupted run. ``'-'`` is standard output.

- JSON: ``{<header>..., "videos": [<row>, ...], <footer>...}``; the document is closed (valid
  JSON) whenever the writer is closed, also after an error or Ctrl-C.
- JSON Lines: one row per line (:meth:`.batch.VideoResult.as_dict`), nothing else.
- CSV: ``video, error, views, decode_s, transforms_s, model_s`` then ``label_K, index_K,
  prob_K`` for K = 1..top.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from .batch import VideoResult

__all__ = ['FORMATS', 'ResultWriter']

FORMATS: tuple[str, ...] = ('json', 'jsonl', 'csv')


class ResultWriter:
    """Rows of one format to one target (a path, or ``'-'`` for standard output).

    Args:
        kind: ``'json'``, ``'jsonl'`` or ``'csv'``.
        target: a file path (created or truncated; its folder must exist), ``'-'`` (standard
            output) or an open text stream (left open).
        header: run-level fields written first (JSON only: model, weights, protocol...).
        top: classes per row (the CSV's columns).
    """

    def __init__(self, kind: str, target: str | os.PathLike | TextIO,
                 header: Mapping[str, Any] | None = None, top: int = 5) -> None:
        if kind not in FORMATS:
            raise ValueError(f'kind must be one of {FORMATS}, got {kind!r}')
        self.kind, self.top = kind, top
        self.rows = 0
        self._closed = False
        self._owned = False
        if hasattr(target, 'write'):
            self.target, self._file = '<stream>', target
        elif os.fspath(target) == '-':
            self.target, self._file = '-', sys.stdout
        else:
            self.target, self._owned = os.fspath(target), True
            try:
                self._file = open(self.target, 'w', encoding='utf-8', newline='')  # noqa: SIM115
            except OSError as err:
                raise ValueError(f'--{kind}: cannot write {self.target}: '
                                 f'{err.strerror or err}') from None
        if kind == 'json':
            head = json.dumps(dict(header or {}), indent=1)[:-1].rstrip()  # the open object
            self._write(head + (',' if header else '') + '\n "videos": [')
        elif kind == 'csv':
            columns = ['video', 'error', 'views', 'decode_s', 'transforms_s', 'model_s']
            for k in range(1, top + 1):
                columns += [f'label_{k}', f'index_{k}', f'prob_{k}']
            self._write(self._csv_line(columns))

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()

    @staticmethod
    def _csv_line(values: list[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator='\n').writerow(values)
        return buffer.getvalue()

    def write(self, result: VideoResult) -> None:
        """Write one video's row (and flush)."""
        if self.kind == 'json':
            row = json.dumps(result.as_dict())
            self._write(('\n  ' if self.rows == 0 else ',\n  ') + row)
        elif self.kind == 'jsonl':
            self._write(json.dumps(result.as_dict()) + '\n')
        else:
            seconds = [result.seconds.get(s) for s in ('decode', 'transforms', 'model')]
            values: list[Any] = [result.video, result.error or '', result.views or '',
                                 *('' if s is None else f'{s:.4f}' for s in seconds)]
            for k in range(self.top):
                if k < len(result.top):
                    index, label, prob = result.top[k]
                    values += [label, index, f'{prob:.6f}']
                else:
                    values += ['', '', '']
            self._write(self._csv_line(values))
        self.rows += 1

    def close(self, footer: Mapping[str, Any] | None = None) -> None:
        """Finish the document (JSON: close the list, add ``footer``); close the file."""
        if self._closed:
            return
        self._closed = True
        if self.kind == 'json':
            tail = ''.join(f',\n {json.dumps(k)}: {json.dumps(v)}'
                           for k, v in (footer or {}).items())
            self._write(('\n ]' if self.rows else ']') + tail + '\n}\n')
        if self._owned:
            self._file.close()

