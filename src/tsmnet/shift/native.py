"""The ``native`` backend: C++ CPU kernels for contiguous and channels-last frames.

A shift made of PyTorch ops takes two kernels or more per call (a gather, then the zeros at
the clip edges; five block copies for channels-last frames) and, in place, a copy of the
shifted channels to move them through. The kernels in ``csrc/shift.cpp`` do each job in one
call and one pass over the bytes: the copying shift writes every output byte once, like
``x.clone()``; the in-place shift walks the frames of each clip in the order that reads a frame
before overwriting it, so it needs no temporary, and its undo is one more pass. They only move
bytes, so the numbers are exactly those of the other backends.

The kernels are compiled with ``torch.utils.cpp_extension`` (a C++ compiler and ninja) the
first time a shift needs them, about 10-20 s once per torch version, and cached in torch's
extension folder (``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``). They use
PyTorch's own thread pool. ``TSMNET_NATIVE=0`` in the environment turns them off.

The build never waits without limit. torch guards a build with a lock file that it waits on
forever, and a build killed by SIGKILL or SIGTERM leaves it behind. Here each process first
takes an ``flock`` of its own in the build folder (the kernel drops it when its holder dies,
so it cannot go stale), waits for it at most ``TSMNET_NATIVE_BUILD_TIMEOUT`` seconds (default
300: one build on a busy machine), and, holding it, removes torch's lock, which no live build
can then own. No compiler, no ninja, a cache folder that cannot be written, a build that fails
or a wait that runs out: the PyTorch ops run instead, and one log line says why.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from mmengine.logging import print_log

from .._torch_compat import (
    extension_build_directory,
    overload_callable,
    torch_function_mode_enabled,
)
from . import library
from .spec import ShiftSpec, dense_frames, frames_layout, is_lazy_view

NAME = 'native'
SOURCE = Path(__file__).with_name('csrc') / 'shift.cpp'
BINDING = SOURCE.with_name('binding.cpp')  # shift_copy as a Python function (see there)
CFLAGS = ('-O3', '-fopenmp')
ENV_SWITCH = 'TSMNET_NATIVE'
ENV_TIMEOUT = 'TSMNET_NATIVE_BUILD_TIMEOUT'
DEFAULT_TIMEOUT_S = 300.0

_UNSET: Any = object()
_kernels: Any = _UNSET  # torch.ops.tsmnet once built, None where they cannot be
_why_not = ''
_ops: tuple[Any, ...] = ()  # shift_copy, shift_, unshift_, their overloads' C++ callables
_thread_lock = threading.Lock()


def kernels() -> Any:
    """The ``torch.ops.tsmnet`` namespace of the kernels, or None where they are off or
    cannot be built. Builds them on the first call (see the module docstring)."""
    if _kernels is _UNSET:
        _build()
    return _kernels


def why_not() -> str:
    """Why the kernels are not in use ('' when they are, or before the first use)."""
    return _why_not


@torch.compiler.assume_constant_result  # compiled code asks once, at trace time
def status() -> str:
    """Why the backend is unavailable here ('' when it is). Builds the kernels if needed."""
    return '' if kernels() is not None else _why_not


def loaded() -> bool:
    """Whether the build (or its failure) has already happened in this process."""
    return _kernels is not _UNSET


def reasons(x: torch.Tensor, in_place: bool) -> list[str]:
    """Why the kernels cannot take ``x``. ``x`` is looked at first, so a program that never
    shifts a CPU tensor never builds them."""
    if (_ops and x.is_cpu and x.layout == torch.strided and x.numel() > 0
            and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
            and not is_lazy_view(x)):
        return []  # the common case first: this runs for every shift
    why = []
    if x.device.type != 'cpu':
        why.append(f'x is on {x.device.type}, the kernels are for the CPU')
    if x.layout != torch.strided or frames_layout(x) == 'strided':
        why.append('x is neither contiguous nor channels-last')
    if is_lazy_view(x):
        why.append('x is a conjugate, negative or quantized view')
    if x.numel() == 0:
        why.append('x is empty')
    if not why and status():
        why.append(status())
    return why


def compile_reasons(x: torch.Tensor) -> list[str]:
    """Why the registered fused op cannot be put in a compiled graph for ``x``. Looks at no
    size or stride: under ``torch.compile(dynamic=True)`` they are symbolic, and a branch on
    them diverges between dynamo's passes; the op's kernel takes any real tensor (it shifts
    in place where it can, else copies: :func:`tsmnet.shift.fused._on_shifted`)."""
    why = []
    if x.device.type != 'cpu':
        why.append(f'x is on {x.device.type}, the kernels are for the CPU')
    if x.layout != torch.strided:
        why.append(f'x has layout {x.layout}, not strided')
    if not why and status():
        why.append(status())
    return why


def copy(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The shift of ``x`` into a new tensor of its memory format (one pass). Differentiable:
    the op's autograd (the opposite shift) and forward AD are in C++ (``csrc/shift.cpp``)."""
    if type(x) is torch.Tensor and not torch_function_mode_enabled():
        return copy_op(x, *spec.op_args)  # type: ignore[attr-defined]
    return _ops[0](x, *spec.op_args)  # type: ignore[attr-defined]  (__torch_function__)


def copy_op(x: torch.Tensor, t: int, fold: int, dirs: list[int]) -> torch.Tensor:
    """The op ``tsmnet::shift_copy`` called from its own binding (``csrc/binding.cpp``),
    once built: through the dispatcher, but not Python's ``__torch_function__``, so for plain
    tensors with no torch-function mode only."""
    raise RuntimeError(f'tsmnet: the native kernels are not built ({_why_not or "not yet"})')


def shift_(x: torch.Tensor, spec: ShiftSpec, keep: bool) -> Callable[[], None]:
    """Shift ``x`` in place (only the folds move); return what undoes it (``keep``). Both
    bump ``x``'s version counter, as PyTorch's in-place ops do (the C++ ops alone do not:
    they have no autograd kernel)."""
    args = spec.op_args  # type: ignore[attr-defined]
    edges = _ops[1](x, *args, keep)
    _bump(x)
    if not keep:
        return library.keep_nothing

    def undo() -> None:
        _ops[2](x, *args, edges)
        _bump(x)
    return undo


def _bump(x: torch.Tensor) -> None:
    if not x.is_inference():  # inference tensors have no version counter
        torch.autograd.graph.increment_version(x)


@torch.library.custom_op(f'{library.NAMESPACE}::native_shift', mutates_args=(),
                         device_types='cpu')
def native_shift(x: torch.Tensor, t: int, fold: int, dirs: list[int]) -> torch.Tensor:
    """The registered copying shift of this backend, for compiled graphs (eager calls go to
    the C++ op directly, without this op's Python dispatch)."""
    if kernels() is None:
        raise RuntimeError(f'tsmnet::native_shift: the native kernels are unavailable '
                           f'({_why_not})')
    return _kernels.shift_copy(dense_frames(x), t, fold, dirs)


@native_shift.register_fake
def _(x: torch.Tensor, t: int, fold: int, dirs: list[int]) -> torch.Tensor:
    return library.copy_like(x)


library.register_gradient(
    native_shift, prepare=dense_frames)


def traced(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """The differentiable registered op, for compiled graphs."""
    return native_shift(x, *library.op_args(spec))


def _register_fakes() -> None:
    """Fake-tensor rules of the C++ ops, so that they can be traced and opchecked."""
    def edges_like(x: torch.Tensor, t: int, fold: int, dirs: list[int], keep: bool
                   ) -> torch.Tensor:
        per_clip = len(dirs) * fold * x.shape[2] * x.shape[3]
        return x.new_empty((x.shape[0] // t * per_clip if keep else 0,))

    torch.library.register_fake('tsmnet::shift_copy',
                                lambda x, t, fold, dirs: library.copy_like(x))
    torch.library.register_fake('tsmnet::shift_', edges_like)
    torch.library.register_fake('tsmnet::unshift_', lambda x, t, fold, dirs, edges: None)


# --------------------------------------------------------------------------- the build
def _fail(why: str) -> None:
    global _kernels, _why_not
    _kernels, _why_not = None, why
    print_log(f'tsmnet: native shift kernels unavailable ({why.splitlines()[0]}); using '
              f'PyTorch ops (same numbers, slower)', logger='current', level=logging.WARNING)


def _timeout_s() -> float:
    value = os.environ.get(ENV_TIMEOUT, '')
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        print_log(f'tsmnet: {ENV_TIMEOUT}={value!r} is not a number of seconds; using '
                  f'{DEFAULT_TIMEOUT_S:g}', logger='current', level=logging.WARNING)
        return DEFAULT_TIMEOUT_S


def _build() -> None:
    global _kernels, _why_not, _ops, copy_op
    with _thread_lock:
        if _kernels is not _UNSET:
            return
        if os.environ.get(ENV_SWITCH, '1') == '0':
            _kernels, _why_not = None, f'turned off by {ENV_SWITCH}=0'
            return
        name = build_name()
        try:
            from torch.utils import cpp_extension

            folder = extension_build_directory(name)
            with _build_lock(folder / 'tsmnet.flock', _timeout_s()) as waited:
                if waited is None:
                    return _fail(f'another process held the build lock of {folder} for '
                                 f'more than {_timeout_s():g} s ({ENV_TIMEOUT})')
                _remove_stale_lock(folder / 'lock')
                built = (folder / f'{name}.so').is_file()
                if not built:
                    missing = _missing_tools(cpp_extension)
                    if missing:
                        return _fail(missing)
                    print_log('tsmnet: building the native shift kernels, once per torch '
                              'version (10-20 s)', logger='current')
                module = cpp_extension.load(
                    name, [str(p) for p in _sources_in(folder)], is_python_module=True,
                    build_directory=str(folder), extra_cflags=list(CFLAGS),
                    extra_ldflags=['-fopenmp'])
            ops = torch.ops.tsmnet
            ops.shift_copy  # noqa: B018  (raises if the library did not register)
            _register_fakes()
            # the overloads' C++ callables: OpOverload.__call__ is one more Python frame
            _ops = tuple(overload_callable(op.default) for op in (ops.shift_copy, ops.shift_,
                                                                  ops.unshift_))
            copy_op = module.shift_copy
            _kernels = ops
        except Exception as err:  # a failed build, a read-only or full cache: fall back
            _fail(f'{type(err).__name__}: {err}'.strip())


def _sources_in(folder: Path) -> tuple[Path, Path]:
    """Copies of the C++ sources inside the build folder. Ninja rebuilds when a source's
    path changes, so building from the installed files would rebuild (10-80 s) each time
    another checkout of the same sources (another venv, a git worktree) used the cache."""
    copies = []
    for source in (SOURCE, BINDING):
        copy = folder / 'sources' / source.name
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(source.read_bytes())
        copies.append(copy)
    return copies[0], copies[1]


def build_name() -> str:
    """The extension's name: one build per source, flags and torch version (torch keys its
    cache folder on the name)."""
    return 'tsmnet_shift_' + hashlib.sha256(
        SOURCE.read_bytes() + BINDING.read_bytes() + ' '.join(CFLAGS).encode()
        + torch.__version__.encode()).hexdigest()[:12]


def _missing_tools(cpp_extension: Any) -> str:
    """What the build lacks ('' if nothing): ninja, or a C++ compiler."""
    if not cpp_extension.is_ninja_available():
        return 'ninja is not installed (pip install ninja)'
    compiler = os.environ.get('CXX', 'c++')
    if shutil.which(compiler) is None:
        return f'no C++ compiler ({compiler!r} not found; set CXX)'
    return ''


@contextlib.contextmanager
def _build_lock(path: Path, timeout_s: float) -> Iterator[float | None]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` body; yield the seconds
    waited for it, or None if it was not free within ``timeout_s``.

    The kernel releases an ``flock`` when its holder exits, killed or not, so a lock held by
    a dead build never blocks: there is no stale state to clean.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() - start > timeout_s:
                    yield None
                    return
                time.sleep(0.1)
        try:
            yield time.monotonic() - start
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_stale_lock(path: Path) -> None:
    """Remove torch's build lock, left by a killed build: holding our lock, no live tsmnet
    build can own it, and torch would wait on it forever."""
    if path.exists():
        path.unlink(missing_ok=True)
        print_log(f'tsmnet: removed a stale build lock left by a killed build ({path})',
                  logger='current', level=logging.WARNING)
