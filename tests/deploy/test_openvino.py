"""``tsmnet.export`` to OpenVINO IR: fp32 (checked in f32; bf16 chosen at load) and int8 (NNCF),
clip and step, each within its format's bound of eager."""

from __future__ import annotations

import pytest
import torch
from conftest import clips

import tsmnet
from tsmnet.deploy.openvino import openvino_runner

pytest.importorskip('openvino')
pytest.importorskip('nncf')


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['clip', 'step'])
@pytest.mark.parametrize('format', ['openvino', 'openvino-int8'])
def test_openvino_export_agrees_with_eager(model, tmp_path, format, kind):
    path = tmp_path / 'model.xml'
    calibration = [clips(2, seed=s) for s in range(3)] if format.endswith('int8') else None
    report = tsmnet.export(model, path, format=format, kind=kind, calibration=calibration)
    assert report.ok, report.lines()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.bin', 'model.xml']
    assert report.size_bytes > path.stat().st_size  # the .bin (weights) counts
    if format == 'openvino':  # fp32: rounding only (measured 2e-6 of max |eager|)
        assert all(c.relative_diff < 1e-4 for c in report.checks.values()), report.lines()
    assert report.top1_agreement == 1.0, report.lines()


@pytest.mark.slow
def test_openvino_bf16_hint_is_chosen_at_load(model, tmp_path):
    path = tmp_path / 'clip.xml'
    tsmnet.export(model, path, format='openvino', example=clips(1))
    x = clips(2)
    with torch.no_grad():
        ref = model(x.flatten(0, 1))
    for precision, bound in (('f32', 1e-4), ('bf16', 5e-2)):  # bf16: 8 bits of mantissa
        got = openvino_runner(path, precision)([x])[0]
        assert float((got - ref).abs().max() / ref.abs().max()) < bound, precision


@pytest.mark.slow
def test_openvino_int8_runs_every_conv_after_a_shift_in_int8(model, tmp_path):
    """With the shift's zero frames as ``Pad``, the CPU plugin's int8 kernels take every conv,
    those after a shift site too (with a ``Concat`` of zeros, a quarter of ResNet-50's stayed
    fp32). A CPU the plugin runs no int8 on runs every conv in fp32: also all alike."""
    from tsmnet.deploy.openvino import core

    path = tmp_path / 'model.xml'
    tsmnet.export(model, path, format='openvino-int8', calibration=[clips(2, seed=s)
                                                                    for s in range(2)])
    compiled = core().compile_model(str(path), 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    convs = [op.get_rt_info()['runtimePrecision'].astype(str)
             for op in compiled.get_runtime_model().get_ordered_ops()
             if op.get_rt_info()['layerType'].astype(str) == 'Convolution']
    assert len(convs) == 20, convs  # ResNet-18: 17 + 3 downsample
    assert len(set(convs)) == 1, convs


def test_openvino_names_a_bad_precision(tmp_path):
    with pytest.raises(ValueError, match="precision must be one of .'f32', 'bf16'., got 'fp8'"):
        openvino_runner(tmp_path / 'missing.xml', 'fp8')


def test_openvino_format_needs_an_xml_path(model, tmp_path):
    with pytest.raises(ValueError, match="path must end with .xml for format='openvino'"):
        tsmnet.export(model, tmp_path / 'model.onnx', format='openvino')


SIGNAL_AFTER_RUNNERS = '''
import os, signal, sys
import numpy as np
import openvino as ov
from openvino import opset13 as ops
from tsmnet.deploy.openvino import openvino_runner

x = ops.parameter([1, 4], np.float32, name='x')
ov.save_model(ov.Model([ops.relu(x)], [x]), sys.argv[1])
first, second = openvino_runner(sys.argv[1]), openvino_runner(sys.argv[1])
del first, second  # freed in the order made
signal.signal(signal.SIGUSR1, lambda *_: print('handled'))
os.kill(os.getpid(), signal.SIGUSR1)
print('alive')
'''


@pytest.mark.slow
def test_runners_freed_in_any_order_leave_signals_working(tmp_path):
    """A Core per runner made the second runner's release put back the first's freed signal
    stack, and the next handled signal (here SIGUSR1; in the suite a DataLoader worker's
    SIGCHLD) killed the process with SIGSEGV (tsmnet.deploy.openvino.core)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, '-c', SIGNAL_AFTER_RUNNERS, str(tmp_path / 'm.xml')],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.split() == ['handled', 'alive']
