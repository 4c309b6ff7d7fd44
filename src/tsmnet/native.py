"""Native CPU kernels for the shift of contiguous and channels-last frames, built on first use.

A shift made of PyTorch ops takes two kernels or more per call (a gather, then the zeros at
the clip edges; five block copies for channels-last frames) and, in place, a copy of the
shifted channels to move them through. The C++ kernels in ``csrc/shift.cpp`` do each job in
one call and one pass over the bytes: the copying shift writes every output byte once, like
``x.clone()``; the in-place shift walks the frames of each clip in the order that reads a
frame before overwriting it, so it needs no temporary, and its undo is one more pass. They
only move bytes, so the numbers are exactly those of the PyTorch ops, which stay as the
fallback (and for other layouts, GPU, tracing, export and ``torch.compile``).

The kernels are compiled with ``torch.utils.cpp_extension`` (a C++ compiler and ninja) the
first time a shift needs them, about 10-20 s once per torch version, and cached in torch's
extension folder (``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``). They
use PyTorch's own thread pool. Where they cannot be built, tsmnet says why once in the log and
uses the PyTorch ops. ``TSMNET_NATIVE=0`` in the environment turns them off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

SOURCE = Path(__file__).with_name('csrc') / 'shift.cpp'
ENV_SWITCH = 'TSMNET_NATIVE'

_UNSET: Any = object()
_kernels: Any = _UNSET  # torch.ops.tsmnet once built, None where they cannot be
_why_not = ''
_lock = threading.Lock()


def kernels() -> Any:
    """The ``torch.ops.tsmnet`` namespace of the native kernels, or None where they are off
    or cannot be built. Builds them on the first call (see the module docstring)."""
    if _kernels is _UNSET:
        _build()
    return _kernels


def kernels_for(x: torch.Tensor) -> Any:
    """The kernels where they take ``x`` (:func:`usable`), else None. ``x`` is looked at
    first, so a program that never shifts a CPU tensor never builds them."""
    return kernels() if usable(x) else None


def why_not() -> str:
    """Why the native kernels are not in use ('' when they are, or before the first use)."""
    return _why_not


@contextmanager
def turned_off() -> Iterator[None]:
    """Shift with the PyTorch ops alone inside the ``with`` body (for side-by-side
    comparisons; not thread-safe)."""
    global _kernels
    saved = kernels()
    _kernels = None
    try:
        yield
    finally:
        _kernels = saved


def usable(x: torch.Tensor) -> bool:
    """Whether the kernels take frames ``x``: dense, contiguous or channels-last and not
    empty, on the CPU, with no pending conjugate or negation view, and no gradient to record
    (the kernels are not differentiable: the shift's own backward calls them, but a double
    backward must see the PyTorch ops)."""
    return (x.is_cpu and x.layout == torch.strided and x.numel() > 0
            and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
            and not (x.is_conj() or x.is_neg() or x.is_quantized)
            and not (x.requires_grad and torch.is_grad_enabled()))


def fold_and_dirs(groups: tuple[tuple[int, int, int], ...]) -> tuple[int, list[int]]:
    """The kernels' view of the shifted groups of :mod:`tsmnet.ops` (adjacent folds from
    channel 0): the fold, and the direction of each fold."""
    return groups[0][1] - groups[0][0], [d for _, _, d in groups]


def _build() -> None:
    global _kernels, _why_not
    with _lock:
        if _kernels is not _UNSET:
            return
        if os.environ.get(ENV_SWITCH, '1') == '0':
            _kernels, _why_not = None, f'turned off by {ENV_SWITCH}=0'
            return
        from mmengine.logging import print_log

        # one build per source and torch version: torch keys its cache on the name
        name = 'tsmnet_shift_' + hashlib.sha256(
            SOURCE.read_bytes() + torch.__version__.encode()).hexdigest()[:12]
        try:
            from torch.utils import cpp_extension

            if not _built(cpp_extension, name):
                print_log('tsmnet: building the native shift kernels, once per torch version '
                          '(10-20 s)', logger='current')
            cpp_extension.load(
                name, [str(SOURCE)], is_python_module=False,
                extra_cflags=['-O3', '-fopenmp'], extra_ldflags=['-fopenmp'])
            _kernels = torch.ops.tsmnet
            _kernels.shift_copy  # noqa: B018  (raises if the library did not register)
        except Exception as err:  # no compiler, no ninja, a read-only cache: fall back
            _kernels, _why_not = None, f'{type(err).__name__}: {err}'.strip()
            print_log(f'tsmnet: native shift kernels unavailable ({_why_not.splitlines()[0]}); '
                      f'using PyTorch ops (same numbers, slower)', logger='current',
                      level=logging.WARNING)


def _built(cpp_extension: Any, name: str) -> bool:
    """Whether torch's extension cache already holds the library ``name``."""
    try:
        folder = cpp_extension._get_build_directory(name, verbose=False)
    except Exception:  # a private helper of torch: if it changes, only the log line does
        return False
    return (Path(folder) / f'{name}.so').is_file()
