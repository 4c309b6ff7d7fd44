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

from ..fileio import WriteError

__all__ = ['OPSET', 'step_names', 'write_onnx']

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


def write_onnx(module: nn.Module, args: tuple[torch.Tensor, ...], path: str | Path, *,
               input_names: Sequence[str], output_names: Sequence[str],
               dynamic_shapes: Any = None, opset_version: int = OPSET,
               external_data: bool = False, **kwargs: Any) -> Path:
    """Export ``module`` with torch's (dynamo) exporter and write it to ``path`` atomically.

    The exporter writes into a temporary folder beside ``path``, under the final name (so a
    data file, where there is one, is named after the model); then the data file and the
    model are moved into place.

    Args:
        module: The module, in eval mode.
        args: Example inputs.
        path: The ``.onnx`` file. An export or write that fails leaves the previous file (and
            no partial or temporary one).
        input_names: Names of the graph inputs, in the order of ``args``.
        output_names: Names of the graph outputs.
        dynamic_shapes: ``torch.onnx.export``'s ``dynamic_shapes``.
        opset_version: The ONNX opset. Defaults to 18.
        external_data: Always write the weights to ``path.name + '.data'``. Defaults to
            False: inside the file, unless they pass ONNX's 2 GB limit.
        **kwargs: More arguments of ``torch.onnx.export``.

    Returns:
        ``path``.

    Raises:
        WriteError: The file cannot be written (the message says why, in one line).
    """
    path = Path(path)
    kwargs.setdefault('verbose', False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent))
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}; nothing was written '
                         f'there') from err
    try:
        torch.onnx.export(module, args, str(folder / path.name), dynamo=True,
                          input_names=list(input_names), output_names=list(output_names),
                          dynamic_shapes=dynamic_shapes, opset_version=opset_version,
                          external_data=external_data, **kwargs)
        for item in sorted(folder.iterdir()):
            if item.name != path.name:
                _flush(item)
                os.replace(item, path.parent / item.name)
        _flush(folder / path.name)
        os.replace(folder / path.name, path)
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}; the previous file, if '
                         f'any, is unchanged') from err
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
    return path


def _flush(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
