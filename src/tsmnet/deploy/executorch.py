"""ExecuTorch ``.pte`` files (the ``mobile`` extra: ``executorch`` 1.5.1 with torchao).

fp32: ``torch.export`` then ``to_edge_transform_and_lower`` with the XNNPACK partitioner.
int8: torchao's PT2E flow (``prepare_pt2e``, calibration, ``convert_pt2e``) with ExecuTorch's
``XNNPACKQuantizer`` (symmetric int8, per-channel weights), then the same lowering. The
XNNPACK quantizer gives a ``cat`` one quantization for its inputs and output, so the shift's
concatenation stays an int8 copy. Shapes are static (``N`` of the example). A ``.pte`` runs
through ``executorch.runtime.Runtime``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from ..fileio import write_bytes

__all__ = ['available', 'pte_runner', 'require', 'write_pte', 'write_pte_int8']


def available() -> bool:
    """Whether ExecuTorch is installed (the ``mobile`` extra)."""
    return importlib.util.find_spec('executorch') is not None


def require() -> None:
    """Raise a clear error where ExecuTorch is not installed."""
    if not available():
        raise ModuleNotFoundError("the .pte formats need ExecuTorch: pip install "
                                  "'tsmnet[mobile]' (executorch 1.5.1, built for torch 2.13)")


def _lower(program: torch.export.ExportedProgram) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    return edge.to_executorch().buffer


def write_pte(module: nn.Module, args: tuple[torch.Tensor, ...], path: str | Path) -> None:
    """Export ``module`` on ``args`` (static shapes) to an fp32 ``.pte``, atomically."""
    with torch.no_grad():
        program = torch.export.export(module, args)
    write_bytes(path, _lower(program))


def write_pte_int8(module: nn.Module, args: tuple[torch.Tensor, ...], path: str | Path,
                   feeds: Iterable[Sequence[torch.Tensor]]) -> None:
    """Quantize ``module`` with PT2E and the XNNPACK quantizer, calibrated on ``feeds`` (one
    list of inputs per run, shaped like ``args``), and write the int8 ``.pte``."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True))
    with torch.no_grad():
        graph = torch.export.export(module, args).module()
        prepared = prepare_pt2e(graph, quantizer)
        seen = 0
        n = args[0].shape[0]
        for inputs in feeds:  # static shapes: runs of n rows
            for row in range(0, inputs[0].shape[0] - n + 1, n):
                prepared(*(x[row:row + n] for x in inputs))
                seen += 1
        if not seen:
            raise ValueError(f'calibration gave no clip of at least the example\'s N = {n} '
                             f'rows (a .pte has static shapes)')
        converted = convert_pt2e(prepared)
        program = torch.export.export(converted, args)
    write_bytes(path, _lower(program))


def pte_runner(path: str | Path):
    """A runner ``inputs -> outputs`` for a ``.pte`` on ExecuTorch's Python runtime."""
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(path)).load_method('forward')

    def run(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [t.clone() for t in method.execute([t.contiguous() for t in inputs])]

    return run
