"""Static int8 through ONNX Runtime's quantization tool, with the shift kept in the int8 graph.

The fp32 file is calibrated (MinMax over every activation, by ONNX Runtime's own
calibrator), then quantized with ``onnxruntime.quantization.quantize_static``: per-channel
int8 weights, uint8 activations (U8S8), QOperator format by default (QLinearConv,
QLinearConcat...; QDQ on request).

How the shift is quantized: a shift site is ``Slice`` (the fold that moves, or the fold kept
for the next frame) and ``Concat`` (the moved fold beside the rest), data movement only. All
tensors that such ops join, through ``Concat``, ``Slice``, ``Reshape`` and the like, are
given one range, the union of their calibrated ranges: the site's input, its slices, the
concatenation, and in the step the buffer input ``buffer_i`` and output ``new_buffer_i``. So
the ``Concat`` joins int8 values of one scale (a copy, no requantisation), a buffer leaves one
step and enters the next with the same scale and zero point (the round trip through float is
exact), and the whole-clip shift's product with its 0/1 frame mask (:func:`tsmnet.shift.
functional.flat_frames`) keeps the site's scale. Ops on integer tensors (the frame index
arithmetic of that mask) are left out of quantization.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..fileio import atomic_path

__all__ = ['Int8Options', 'quantize_onnx', 'shared_range_groups']

logger = logging.getLogger(__name__)

# ops whose output holds (a part of) the values of their data input(s): one range for all
_SHARED = {'Concat': None, 'Slice': 1, 'Reshape': 1, 'Flatten': 1, 'Squeeze': 1, 'Unsqueeze': 1,
           'Identity': 1, 'Transpose': 1, 'Expand': 1}


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    return getattr(CalibrationMethod, name)


_METHODS = {'minmax': lambda: _method('MinMax'), 'percentile': lambda: _method('Percentile'),
            'entropy': lambda: _method('Entropy')}


@dataclass(frozen=True)
class Int8Options:
    """How ONNX Runtime quantizes (see docs/export.md for the measurements behind the
    defaults).

    Args:
        quant_format: ``'qoperator'`` (QLinearConv... operators; default) or ``'qdq'``
            (QuantizeLinear/DequantizeLinear pairs around float operators, fused by ONNX
            Runtime when the session is built).
        activations: ``'uint8'`` (default) or ``'int8'``.
        weights: ``'int8'`` (default) or ``'uint8'``.
        per_channel: One scale per output channel of each weight. Defaults to True.
        reduce_range: 7-bit weights, for x86 CPUs without VNNI where U8S8 products can
            saturate. Defaults to False.
        calibrate_method: ``'minmax'`` (default), ``'percentile'`` or ``'entropy'``.
    """

    quant_format: Literal['qoperator', 'qdq'] = 'qoperator'
    activations: Literal['uint8', 'int8'] = 'uint8'
    weights: Literal['int8', 'uint8'] = 'int8'
    per_channel: bool = True
    reduce_range: bool = False
    calibrate_method: Literal['minmax', 'percentile', 'entropy'] = 'minmax'

    def __post_init__(self) -> None:
        for name, allowed in (('quant_format', ('qoperator', 'qdq')),
                              ('activations', ('uint8', 'int8')), ('weights', ('int8', 'uint8')),
                              ('calibrate_method', ('minmax', 'percentile', 'entropy'))):
            if getattr(self, name) not in allowed:
                raise ValueError(f'{name} must be one of {allowed}, got {getattr(self, name)!r}')


class _Feeds:
    """An ONNX Runtime ``CalibrationDataReader`` over a list of input lists."""

    def __init__(self, names: Sequence[str], feeds: Iterable[Sequence[torch.Tensor]]) -> None:
        self.names = list(names)
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        inputs = next(self.feeds, None)
        if inputs is None:
            return None
        return {n: t.detach().cpu().contiguous().numpy() for n, t in zip(self.names, inputs)}

    def __len__(self) -> int:  # CalibStridedMinMax asks; unused
        return 0


def shared_range_groups(model: Any) -> list[set[str]]:
    """Tensors joined by data-movement ops (:data:`_SHARED`): the groups of names that get
    one range (each group has more than one name)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    initializers = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in _SHARED:
            continue
        count = _SHARED[node.op_type]
        data = [n for n in (node.input if count is None else node.input[:count])
                if n and n not in initializers]
        for name in data:
            for out in node.output:
                parent[find(name)] = find(out)
    groups: dict[str, set[str]] = {}
    for name in list(parent):
        groups.setdefault(find(name), set()).add(name)
    return [g for g in groups.values() if len(g) > 1]


def _ranges(model_path: Path, feeds: Iterable[Sequence[torch.Tensor]], names: Sequence[str],
            method: str, folder: Path) -> dict[str, tuple[float, float]]:
    from onnxruntime.quantization import create_calibrator

    calibrator = create_calibrator(model_path, [],
                                   augmented_model_path=str(folder / 'augmented.onnx'),
                                   calibrate_method=_METHODS[method](),
                                   providers=['CPUExecutionProvider'])
    calibrator.collect_data(_Feeds(names, feeds))
    data = calibrator.compute_data()
    ranges = {}
    for name, value in data.data.items():
        low, high = value.range_value
        ranges[name] = (float(np.asarray(low).min()), float(np.asarray(high).max()))
    return ranges


def quantize_onnx(fp32_path: str | Path, path: str | Path,
                  feeds: Iterable[Sequence[torch.Tensor]], options: Int8Options | None = None
                  ) -> dict[str, tuple[float, float]]:
    """Quantize the fp32 ONNX file ``fp32_path`` into ``path`` (atomically).

    Args:
        fp32_path: The float model.
        path: The int8 ``.onnx`` to write.
        feeds: Calibration inputs, one list of tensors (in the graph's input order) per run.
        options: How to quantize. Defaults to :class:`Int8Options()`.

    Returns:
        The range ``(min, max)`` given to every calibrated tensor.

    Raises:
        ValueError: The calibration gave no data.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    options = options or Int8Options()
    types = {'uint8': QuantType.QUInt8, 'int8': QuantType.QInt8}
    with tempfile.TemporaryDirectory(prefix='tsmnet-int8.') as tmp:
        folder = Path(tmp)
        prepared = folder / 'prepared.onnx'
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        names = [i.name for i in model.graph.input]
        runs = list(feeds)
        if not runs:
            raise ValueError('calibration is empty: expected at least one clip [N, T, C, H, W]')
        ranges = _ranges(prepared, runs, names, options.calibrate_method, folder)
        shared: dict[str, tuple[float, float]] = {}
        for group in shared_range_groups(model):
            known = [ranges[n] for n in group if n in ranges]
            if known:
                low, high = min(r[0] for r in known), max(r[1] for r in known)
                shared.update((name, (low, high)) for name in group)
        ranges.update(shared)
        degenerate = sorted(n for n, (low, high) in ranges.items() if not high > low)
        if degenerate:
            logger.warning('int8: %d calibrated tensors are constant (min = max), e.g. %s',
                           len(degenerate), degenerate[:3])
        # only the shared ranges are overridden: ONNX Runtime calibrates the rest itself (it
        # folds a ReLU into the op before it by giving that op the ReLU's output range)
        overrides = {name: [{'rmin': np.float32(low), 'rmax': np.float32(high)}]
                     for name, (low, high) in shared.items() if high > low}
        fmt = QuantFormat.QOperator if options.quant_format == 'qoperator' else QuantFormat.QDQ
        with atomic_path(path) as out:
            quantize_static(str(prepared), str(out), _Feeds(names, runs), quant_format=fmt,
                            per_channel=options.per_channel, reduce_range=options.reduce_range,
                            activation_type=types[options.activations],
                            weight_type=types[options.weights],
                            calibrate_method=_METHODS[options.calibrate_method](),
                            nodes_to_exclude=_index_nodes(model),
                            extra_options={'TensorQuantOverrides': overrides})
    return ranges


def _index_nodes(model: Any) -> list[str]:
    """The nodes whose data input is an integer tensor (shape and index arithmetic): nothing
    to quantize, and ONNX Runtime would log a warning for each."""
    import onnx

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
    types.update((i.name, i.data_type) for i in model.graph.initializer)
    return [node.name for node in model.graph.node
            if node.input and node.input[0] in types and types[node.input[0]] not in floats]
