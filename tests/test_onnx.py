"""Export: ONNX (both exporters, opset 17) and TorchScript tracing work for any number of clips.

The original TSM release's exports froze the slice-assignment shift into constants, so their
outputs changed with the batch. Here a model is exported or traced with 2 clips and run with
1, 2 and 3 clips of different content; every run must equal eager PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from parity import randomize
from torch import nn

from tsmnet import ResNetTSM, TemporalShift
from tsmnet.shift import temporal_shift_reference

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')  # torch's default (dynamo) exporter needs it

T = 4
SIZE = 32
OPSET = 17
TOL = 1e-4

CONFIGS: dict[str, dict[str, Any]] = {
    'blockres': dict(shift_place='blockres'),
    'block': dict(shift_place='block'),
    'temporal_pool': dict(shift_place='blockres', temporal_pool=True),
    'causal': dict(shift_place='blockres', shift_mode='causal'),
}


def _model(**kwargs: Any) -> ResNetTSM:
    """A ResNet-18-TSM in eval mode with non-trivial BN statistics (so BN folding shows)."""
    model = ResNetTSM(18, num_segments=T, pretrained=None, **kwargs)
    randomize(model, seed=1)
    return model.eval()


def _clips(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n * T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _export(model: nn.Module, path: Path, dynamo: bool, example: torch.Tensor,
            style: str = 'shapes') -> None:
    kwargs: dict[str, Any]
    if not dynamo:
        kwargs = dict(dynamic_axes={'x': {0: 'frames'}, 'y': {0: 'frames'}})
    elif style == 'shapes':
        # a dynamic number of clips, each of T frames: the batch is T * clips
        kwargs = dict(dynamic_shapes={'x': {0: torch.export.Dim('clips', min=1, max=64) * T}})
    else:  # what many users write: the TorchScript exporter's dynamic_axes, given to dynamo
        kwargs = dict(dynamic_axes={'x': {0: 'frames'}, 'y': {0: 'frames'}})
    torch.onnx.export(model, (example,), str(path), dynamo=dynamo, opset_version=OPSET,
                      input_names=['x'], output_names=['y'], **kwargs)


def _check_model_file(path: Path) -> ort.InferenceSession:
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets.get('', opsets.get('ai.onnx')) == OPSET, (
        f'asked for opset {OPSET}, the file holds {opsets}')
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField('dim_value'), (
        f'the batch axis was frozen: {batch_dim}')
    return ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])


def _assert_runs_like_eager(model: nn.Module, run) -> None:
    for n, seed in ((1, 11), (2, 12), (3, 13)):
        x = _clips(n, seed)
        with torch.no_grad():
            expected = model(x)
        got = run(x)
        assert got.shape == expected.shape, f'{n} clips: shape {got.shape} != {expected.shape}'
        err = (got - expected).abs().max().item()
        assert err <= TOL, f'{n} clips: max abs difference {err:.3g} > {TOL}'


@pytest.mark.slow
@pytest.mark.parametrize('dynamo', [True, False], ids=['dynamo', 'torchscript'])
@pytest.mark.parametrize('config', list(CONFIGS))
def test_onnx_export_any_number_of_clips(config: str, dynamo: bool, tmp_path: Path) -> None:
    model = _model(**CONFIGS[config])
    path = tmp_path / 'model.onnx'
    _export(model, path, dynamo, _clips(2, 0))
    session = _check_model_file(path)
    _assert_runs_like_eager(
        model, lambda x: torch.from_numpy(session.run(None, {'x': x.numpy()})[0]))


@pytest.mark.slow
def test_dynamo_export_with_dynamic_axes(tmp_path: Path) -> None:
    """``dynamic_axes`` on the frame axis (no divisibility stated) also gives a working file:
    the input checks in ``forward`` must not break a symbolic batch."""
    model = _model()
    path = tmp_path / 'model.onnx'
    _export(model, path, True, _clips(2, 0), style='axes')
    session = _check_model_file(path)
    _assert_runs_like_eager(
        model, lambda x: torch.from_numpy(session.run(None, {'x': x.numpy()})[0]))


@pytest.mark.slow  # exports to ONNX
@pytest.mark.parametrize('dynamo', [True, False], ids=['dynamo', 'torchscript'])
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
def test_exported_shift_pads_exact_zeros(mode: str, dynamo: bool, tmp_path: Path) -> None:
    """The shift alone, exported: equal to the loop reference bit for bit, for any number of
    clips, and its zero frames stay zeros when the input holds inf and NaN."""
    shift = TemporalShift(nn.Identity(), num_segments=T, shift_div=4, shift_mode=mode).eval()
    path = tmp_path / 'shift.onnx'
    _export(shift, path, dynamo, torch.randn(2 * T, 8, 3, 3))
    session = _check_model_file(path)
    for n in (1, 2, 3):
        x = torch.randn(n * T, 8, 3, 3)
        x[0::T] = float('inf')  # first and last frames of every clip: what the shift drops
        x[T - 1::T] = float('nan')
        got = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
        expected = temporal_shift_reference(x, T, 4, mode)
        assert torch.equal(got.isnan(), expected.isnan())
        assert torch.equal(got.nan_to_num(), expected.nan_to_num())


@pytest.mark.quick_only('causal')
@pytest.mark.parametrize('config', list(CONFIGS))
def test_jit_trace_any_number_of_clips(config: str) -> None:
    model = _model(**CONFIGS[config])
    with torch.no_grad():
        traced = torch.jit.trace(model, _clips(2, 0), check_trace=False)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return traced(x)

    _assert_runs_like_eager(model, run)
