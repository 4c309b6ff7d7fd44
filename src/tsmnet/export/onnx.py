"""Writing an ONNX file that is complete on its own, atomically.

torch's exporter, given a file name, writes the weights to an external-data file named after
that name; written through a temporary name (an atomic write), the data file keeps the
temporary name and the ``.onnx`` refers to it. :func:`write_onnx` keeps the weights inside the
``.onnx`` below ONNX's 2 GB protobuf limit, and beyond it writes ``NAME.onnx.data`` beside
``NAME.onnx`` (the data file first, then the model: a reader never sees a model whose data is
missing).

This module imports torch and :mod:`tsmnet.fileio` only (``TSMStream.export_onnx`` uses it);
onnx is imported by torch's exporter itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..fileio import WriteError, atomic_path

__all__ = ['MAX_INLINE_BYTES', 'OPSET', 'step_names', 'write_onnx']

# protobuf refuses messages of 2 GiB and more; leave room for the graph itself
MAX_INLINE_BYTES = 2**31 - 2**26
OPSET = 18


def step_names(num_features: int, num_buffers: int) -> tuple[list[str], list[str]]:
    """Input and output names of an exported step: ``frames, buffer_0 ...`` and ``features``
    (``features_0 ...`` with several outputs) or ``scores``, then ``new_buffer_0 ...``.

    Args:
        num_features: Outputs before the buffers; 0 means one ``scores`` output.
        num_buffers: Shift sites.
    """
    inputs = ['frames'] + [f'buffer_{i}' for i in range(num_buffers)]
    if num_features == 0:
        outputs = ['scores']
    elif num_features == 1:
        outputs = ['features']
    else:
        outputs = [f'features_{j}' for j in range(num_features)]
    return inputs, outputs + [f'new_buffer_{i}' for i in range(num_buffers)]


def _initializer_bytes(program: Any) -> int:
    return sum(int(value.const_value.nbytes) for value in
               program.model.graph.initializers.values() if value.const_value is not None)


def write_onnx(module: nn.Module, args: tuple[torch.Tensor, ...], path: str | Path, *,
               input_names: Sequence[str], output_names: Sequence[str],
               dynamic_shapes: Any = None, opset_version: int = OPSET,
               max_inline_bytes: int = MAX_INLINE_BYTES, **kwargs: Any) -> Path:
    """Export ``module`` with torch's (dynamo) exporter and write it to ``path`` atomically.

    Args:
        module: The module, in eval mode.
        args: Example inputs.
        path: The ``.onnx`` file. An export or write that fails leaves the previous file (and
            no partial or temporary one).
        input_names: Names of the graph inputs, in the order of ``args``.
        output_names: Names of the graph outputs.
        dynamic_shapes: ``torch.onnx.export``'s ``dynamic_shapes``.
        opset_version: The ONNX opset. Defaults to 18.
        max_inline_bytes: Weights up to this size stay inside the file; beyond it they go to
            ``path.name + '.data'`` beside it. Defaults to just below 2 GiB.
        **kwargs: More arguments of ``torch.onnx.export``.

    Returns:
        ``path``.

    Raises:
        WriteError: The file cannot be written (the message says why, in one line).
    """
    path = Path(path)
    kwargs.setdefault('verbose', False)
    program = torch.onnx.export(module, args, None, dynamo=True, input_names=list(input_names),
                                output_names=list(output_names), dynamic_shapes=dynamic_shapes,
                                opset_version=opset_version, **kwargs)
    if _initializer_bytes(program) <= max_inline_bytes:
        with atomic_path(path) as tmp:
            program.save(str(tmp), external_data=False)
        return path
    _write_with_data(program, path)
    return path


def _write_with_data(program: Any, path: Path) -> None:
    """Save into a temporary folder beside ``path`` under the final name (so the data file is
    named after the model), then move the data file, then the model, into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent))
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}; nothing was written '
                         f'there') from err
    try:
        program.save(str(folder / path.name), external_data=True)
        for item in sorted(folder.iterdir()):
            if item.name != path.name:
                os.replace(item, path.parent / item.name)
        os.replace(folder / path.name, path)
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}; the previous file, if '
                         f'any, is unchanged') from err
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
