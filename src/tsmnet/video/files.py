"""Which videos a command line names: files, folders, glob patterns and list files.

``tsmnet predict a.mp4 clips/ 'more/**/*.mkv' @list.txt`` names videos four ways. Each
argument expands, in order, to:

- a folder: every file under it (recursively) whose extension is a video's
  (:data:`VIDEO_EXTENSIONS`, any case), sorted;
- ``@FILE``: the paths listed in FILE, one a line (blank lines and lines starting with ``#``
  ignored), each expanded in turn (a listed folder or pattern expands too); relative paths are
  relative to the current directory, as ``find ... > FILE`` writes them;
- a glob pattern (``*``, ``?`` or ``[`` in a path that does not exist; ``**`` spans folders):
  the matching paths, sorted;
- anything else: that path, as it is. A path that does not exist stays in the list, so that
  the run reports it as a failed video rather than stopping.

A path named twice is kept once (its first place).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ['VIDEO_EXTENSIONS', 'find_videos']

# what FFmpeg reads as video, by extension (folders are filtered by these; files named
# explicitly are taken whatever their extension)
VIDEO_EXTENSIONS: tuple[str, ...] = (
    '.mp4', '.m4v', '.mov', '.avi', '.mkv', '.webm', '.mpg', '.mpeg', '.ts', '.m2ts', '.flv',
    '.wmv', '.3gp', '.ogv', '.y4m', '.mjpeg', '.mxf', '.vob')
_GLOB_CHARS = frozenset('*?[')


def _folder(folder: Path, extensions: tuple[str, ...]) -> list[str]:
    found = sorted(str(p) for p in folder.rglob('*')
                   if p.suffix.lower() in extensions and p.is_file())
    if not found:
        raise ValueError(f'folder {str(folder)!r} holds no video (looked for '
                         f'{", ".join(extensions)} under it)')
    return found


def _list_file(path: str, extensions: tuple[str, ...], seen_lists: set[str]) -> list[str]:
    key = os.path.realpath(path)
    if key in seen_lists:
        raise ValueError(f'list file {path!r} lists itself (through @{path})')
    try:
        lines = Path(path).read_text(encoding='utf-8').splitlines()
    except OSError as err:
        raise ValueError(f'list file {path!r} cannot be read: {err.strerror or err}') from None
    entries = [line.strip() for line in lines]
    entries = [e for e in entries if e and not e.startswith('#')]
    if not entries:
        raise ValueError(f'list file {path!r} lists no video (one path a line expected)')
    return _expand(entries, extensions, seen_lists | {key})


def _expand(items: Iterable[str | os.PathLike], extensions: tuple[str, ...],
            seen_lists: set[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if text.startswith('@') and len(text) > 1:
            out += _list_file(text[1:], extensions, seen_lists)
        elif Path(text).is_dir():
            out += _folder(Path(text), extensions)
        elif not os.path.lexists(text) and _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise ValueError(f'pattern {text!r} matches no file')
            for match in matches:
                out += _folder(Path(match), extensions) if Path(match).is_dir() else [match]
        else:
            out.append(text)
    return out


def find_videos(items: Iterable[str | os.PathLike],
                extensions: Iterable[str] = VIDEO_EXTENSIONS) -> list[str]:
    """Expand video arguments (files, folders, glob patterns, ``@list`` files) to paths.

    Args:
        items: what the user named, in order (see the module's docstring for each form).
        extensions: the file extensions a folder is searched for (with the dot, any case).

    Returns:
        The video paths in order, each once. Paths that do not exist are kept (the caller
        reports them per video).

    Raises:
        ValueError: when a folder holds no video, a pattern matches nothing, a list file
            cannot be read or lists nothing, or nothing at all is named.

    Example:
        >>> find_videos(['clips/', 'extra.mp4'])  # doctest: +SKIP
        ['clips/a/1.mp4', 'clips/b/2.mkv', 'extra.mp4']
    """
    extensions = tuple(e.lower() if e.startswith('.') else f'.{e.lower()}' for e in extensions)
    found = _expand(items, extensions, set())
    if not found:
        raise ValueError('no video named: expected files, folders, glob patterns or @list '
                         'files')
    return list(dict.fromkeys(found))
