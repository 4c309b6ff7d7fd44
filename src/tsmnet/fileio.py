"""Atomic file writes: every file tsmnet writes appears complete or not at all.

Data goes to a temporary file in the destination's folder (so the final rename stays on one
filesystem) and is renamed over the destination only once it is completely written and
flushed to disk. A full disk, a crash or an interrupt therefore leaves the previous file
intact and no partial one.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ['WriteError', 'atomic_folder', 'atomic_path', 'atomic_write', 'save_torch',
           'write_bytes', 'write_text']


class WriteError(OSError):
    """A file could not be written; the previous file at that path, if any, is unchanged."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file name beside ``path``, for a writer that takes a name (an exporter);
    once the block ends, the file is flushed to disk and renamed to ``path``.

    Raises:
        WriteError: Writing failed (no space left, no permission...). The message says why in
            one line; the temporary file is removed and ``path`` is untouched. Any other
            error of the block also removes it and leaves ``path`` as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise _write_error(path, err) from err
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = 'wb', **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it to ``path`` when the block ends
    (:func:`atomic_path`).

    Args:
        path: The destination. Its folder is created if needed.
        mode: ``'wb'`` or ``'w'``. Defaults to ``'wb'``.
        **open_kwargs: Passed to ``open`` (e.g. ``encoding='utf-8'``).

    Raises:
        WriteError: Writing failed (no space left, no permission...). The message says why in
            one line; the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, os.fdopen(os.open(tmp, os.O_WRONLY), mode,
                                             **open_kwargs) as f:
        yield f


def _write_error(path: Path, err: OSError) -> WriteError:
    reason = err.strerror or str(err) or type(err).__name__
    error = WriteError(f'cannot write {path}: {reason}; nothing was written there (a previous '
                       f'file of that name is unchanged)')
    error.errno = err.errno
    return error


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path, 'wb') as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    with atomic_write(path, 'w', encoding='utf-8') as f:
        f.write(text)


def save_torch(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)``, atomically.

    The object is serialised in memory first, so that a failing write surfaces as the
    ``OSError`` it is (``torch.save`` into a file reports it as a ``RuntimeError``).
    """
    import torch  # here: the commands' --help imports this module and must not load torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path``, for a writer that writes ``path.name`` and files
    named after it (an ONNX model and its ``NAME.onnx.data``): yields the name to write,
    ``folder / path.name``; once the block ends, the other files, then ``path``, are flushed
    and moved into place, and the folder is removed (also when the block fails).

    Raises:
        WriteError: Writing failed; ``path`` is untouched (the message says why, in one line).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent))
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        yield folder / path.name
        for item in sorted(folder.iterdir(), key=lambda p: p.name == path.name):
            fd = os.open(item, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(item, 0o666 & ~_umask())
            os.replace(item, path.parent / item.name)
    except OSError as err:
        if isinstance(err, WriteError):
            raise
        raise _write_error(path, err) from err
    finally:
        shutil.rmtree(folder, ignore_errors=True)
