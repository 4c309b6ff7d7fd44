"""Let ``torch.load(weights_only=True)`` read MMEngine runner checkpoints, and nothing more.

Torch >= 2.6 loads with ``weights_only=True`` by default: its unpickler builds tensors and
plain containers only, and refuses any other global a pickle names. A checkpoint that
MMEngine's ``Runner`` (MMAction2's ``tools/train.py``) writes also holds the state of its
``MessageHub``: ``mmengine.logging.HistoryBuffer`` objects whose histories are numpy arrays,
numpy scalars, and a ``statistics_methods`` dict of ``HistoryBuffer``'s own methods. So
``tools/test.py`` and ``--resume`` fail on the checkpoint that training just wrote.

:func:`register_safe_globals` (run by tsmnet's loaders, and by :mod:`tsmnet.registry`, which
``custom_imports`` and the MMEngine glue import) allow-lists exactly what such a
checkpoint needs, each entry harmless on its own:

* ``HistoryBuffer``: its constructor and ``__dict__`` update only store values.
* ``numpy.ndarray``, ``numpy._core.multiarray._reconstruct`` and ``numpy.dtype``: an empty
  array of an allow-listed type plus its raw bytes (the entries torch's own docs suggest).
* The numeric and boolean dtype classes (``numpy.dtypes.Float64DType``, ``Int64DType``...),
  because the unpickler's ``BUILD`` step checks the type of the dtype it restores. Object
  and void dtypes are left out.
* ``numpy._core.multiarray.scalar``: a scalar of such a dtype from its bytes.
* ``builtins.getattr``, but **not** the builtin. Pickle protocol 2 (``torch.save``'s default)
  writes a method such as ``HistoryBuffer.mean`` as ``getattr(HistoryBuffer, 'mean')``. The
  real ``getattr`` would turn any allow-listed object into any of its attributes (bound
  methods, ``__class__``, ``__globals__`` of a function...), which the unpickler could then
  pass around or build on. In its place the name ``builtins.getattr`` is mapped to
  :func:`restricted_getattr`, which returns only ``HistoryBuffer``'s four built-in statistics
  methods and raises ``pickle.UnpicklingError`` for every other request.

Every other global still fails, so a pickle that would run code is refused as before.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# What a Runner checkpoint may ask of getattr: HistoryBuffer's default statistics methods.
_GETATTR_ALLOWED: dict[tuple[type, str], Callable[..., Any]] = {
    (HistoryBuffer, name): getattr(HistoryBuffer, name)
    for name in ('min', 'max', 'current', 'mean')
}

_DTYPE_CLASS_NAMES: tuple[str, ...] = (
    'BoolDType', 'Float16DType', 'Float32DType', 'Float64DType', 'Int8DType', 'Int16DType',
    'Int32DType', 'Int64DType', 'UInt8DType', 'UInt16DType', 'UInt32DType', 'UInt64DType')


def restricted_getattr(obj: Any, name: str) -> Callable[..., Any]:
    """``getattr`` for unpickling, limited to ``HistoryBuffer``'s statistics methods.

    Args:
        obj: The object the pickle asks an attribute of; must be the class ``HistoryBuffer``.
        name: One of ``'min'``, ``'max'``, ``'current'``, ``'mean'``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if isinstance(obj, type) and isinstance(name, str):
        found = _GETATTR_ALLOWED.get((obj, name))
        if found is not None:
            return found
    shown = obj.__qualname__ if isinstance(obj, type) else type(obj).__qualname__
    raise pickle.UnpicklingError(
        f'refused getattr({shown}, {name!r}) while loading a checkpoint: only '
        f'HistoryBuffer.{{min,max,current,mean}} are allowed under weights_only=True')


def safe_globals() -> list[Any]:
    """The allow-list, in the form ``torch.serialization.add_safe_globals`` takes.

    Returns:
        Objects and ``(object, 'module.name')`` pairs; the pair form maps the pickle's name
        ``builtins.getattr`` to :func:`restricted_getattr` and names numpy's old module paths.
    """
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries: list[Any] = [HistoryBuffer, np.ndarray, np.dtype,
                          (restricted_getattr, 'builtins.getattr')]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
            entries.append((func, f'{module}.{func.__name__}'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        entries += [getattr(dtypes, name) for name in _DTYPE_CLASS_NAMES]
    return entries


_registered = False


def register_safe_globals() -> None:
    """Add :func:`safe_globals` to torch's ``weights_only`` allow-list (once per process)."""
    global _registered
    if not _registered:
        torch.serialization.add_safe_globals(safe_globals())
        _registered = True

