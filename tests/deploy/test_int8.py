"""int8 through ONNX Runtime: the shift stays in the quantized graph with one scale per site,
buffers leave a step and enter the next with the same quantization, no degenerate range."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import clips
from onnx import numpy_helper

import tsmnet
from tsmnet.deploy.quantize import Int8Options

pytestmark = pytest.mark.slow  # ONNX exports with calibration

SITES = 8  # ResNet-18-TSM, blockres: one shift per block


def _consts(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def _activation_scales(proto: onnx.ModelProto) -> list[float]:
    consts = _consts(proto)
    scales = []
    for node in proto.graph.node:
        if node.op_type in ('QuantizeLinear', 'DequantizeLinear') and node.input[1] in consts:
            value = consts[node.input[1]]
            if value.size == 1 and not node.input[0].endswith('weight'):
                scales.append(float(value))
    return scales


@pytest.fixture(scope='module')
def step_int8(tmp_path_factory, model):
    path = tmp_path_factory.mktemp('int8') / 'step_int8.onnx'
    report = tsmnet.export(model, path, kind='step', format='onnx-int8',
                           calibration=[clips(4, seed=1), clips(4, seed=2)])
    return path, report


def test_step_int8_agrees_with_eager(step_int8) -> None:
    _, report = step_int8
    assert report.ok, report.lines()
    streamed = report.checks['streamed clip (4 x 3 frames)']
    assert streamed.cosine > 0.99 and streamed.top1_agreement >= 0.9
    assert 'qoperator' in report.notes[0]


def test_step_int8_shift_sites_are_int8_copies(step_int8) -> None:
    path, _ = step_int8
    proto = onnx.load(str(path))
    consts = _consts(proto)
    ops = [n.op_type for n in proto.graph.node]
    assert 'Concat' not in ops and ops.count('QLinearConcat') == SITES  # none fell out
    for node in proto.graph.node:
        if node.op_type != 'QLinearConcat':
            continue
        y_scale, y_zero = consts[node.input[0]], consts[node.input[1]]
        parts = node.input[2:]
        assert len(parts) == 6  # the moved fold (from the buffer) and the rest of the frame
        for i in range(0, len(parts), 3):
            assert consts[parts[i + 1]] == y_scale and consts[parts[i + 2]] == y_zero, node.name
    # a buffer leaves a step and enters the next with the same scale and zero point
    producers = {o: n for n in proto.graph.node for o in n.output}
    for i in range(SITES):
        enter = next(n for n in proto.graph.node if f'buffer_{i}' in n.input)
        leave = producers[f'new_buffer_{i}']
        while leave.op_type == 'Slice':  # a float slice of the dequantized site input
            leave = producers[leave.input[0]]
        assert enter.op_type == 'QuantizeLinear' and leave.op_type == 'DequantizeLinear'
        assert consts[enter.input[1]] == consts[leave.input[1]]
        assert consts[enter.input[2]] == consts[leave.input[2]]
    scales = _activation_scales(proto)
    assert scales and all(s > 0 and s != 1.0 for s in scales)  # 1.0: ORT's min = max case


def test_clip_int8_qdq_shift_sites_keep_one_scale(tmp_path: Path, model) -> None:
    """No constant zero tensor (range min = max = 0 alone) enters the whole-clip shift's
    int8 graph: each ``Concat`` joins tensors of the site's one scale, and no activation takes
    ONNX Runtime's min = max fallback scale of 1.0."""
    path = tmp_path / 'clip_int8.onnx'
    report = tsmnet.export(model, path, kind='clip', format='onnx-int8',
                           calibration=clips(4, seed=3), int8=Int8Options(quant_format='qdq'))
    assert report.ok, report.lines()
    proto = onnx.load(str(path))
    consts = _consts(proto)
    producers = {o: n for n in proto.graph.node for o in n.output}
    concats = [n for n in proto.graph.node if n.op_type == 'Concat']
    assert len(concats) >= SITES  # the zero padding in time, then the folds side by side
    for node in concats:
        scales = set()
        for name in node.input:
            dq = producers[name]
            assert dq.op_type == 'DequantizeLinear', f'{node.name}: {name} is not quantized'
            scales.add(float(consts[dq.input[1]]))
        (q,) = [n for n in proto.graph.node if node.output[0] in n.input]
        assert q.op_type == 'QuantizeLinear'
        assert scales == {float(consts[q.input[1]])} and 1.0 not in scales
    assert all(s > 0 and s != 1.0 for s in _activation_scales(proto))


def test_clip_int8_leaves_index_arithmetic_alone(tmp_path: Path, model,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The shift mask's frame indices (int64) are not offered to the quantizer, which would
    log a warning with a dump of each tensor's type for every one."""
    with caplog.at_level(logging.WARNING):
        report = tsmnet.export(model, tmp_path / 'clip_int8.onnx', kind='clip',
                               format='onnx-int8', calibration=clips(2, seed=4))
    assert report.ok, report.lines()
    assert not [r for r in caplog.records if 'to quantize for tensor' in r.getMessage()]
