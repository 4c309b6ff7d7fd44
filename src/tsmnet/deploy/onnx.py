"""Writing an ONNX file that is complete on its own, atomically.

torch's exporter, given a file name, writes the weights to an external-data file named after
that name; written through a temporary name (an atomic write), the data file keeps the
temporary name and the ``.onnx`` refers to it. :func:`write_onnx` keeps the weights inside the
``.onnx`` below ONNX's 2 GB protobuf limit, and beyond it writes ``NAME.onnx.data`` beside
``NAME.onnx`` (the data file first, then the model: a reader never sees a model whose data is
missing).

The writing itself is :func:`tsmnet.fileio.atomic_folder`, which ``TSMStream.export_onnx``
uses too (stream sits below export).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..fileio import atomic_folder

__all__ = ['OPSET', 'write_onnx']

OPSET = 18


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
    with atomic_folder(path) as tmp:
        torch.onnx.export(module, args, str(tmp), dynamo=True, input_names=list(input_names),
                          output_names=list(output_names), dynamic_shapes=dynamic_shapes,
                          opset_version=opset_version, external_data=external_data, **kwargs)
    return path
