"""Bad input to ``tsmnet.export``: one clear error each, before any export, nothing left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import SIZE, T, clips

import tsmnet
from tsmnet import ResNetTSM
from tsmnet.fileio import WriteError


def _nothing_in(folder: Path) -> None:
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(format='tflite'), ValueError,
     r"format must be one of \('onnx', 'onnx-int8', 'pte', 'pte-int8', 'openvino', "
     r"'openvino-int8'\), got 'tflite'"),
    (dict(kind='video'), ValueError, r"kind must be one of \('clip', 'step'\), got 'video'"),
    (dict(kind='clip', example=torch.zeros(1, 3, SIZE, SIZE)), ValueError,
     r"example for kind='clip' must be \[N, T=3, C=3, H, W\] .* got shape \(1, 3, 32, 32\)"),
    (dict(kind='step', example=torch.zeros(1, T, 3, SIZE, SIZE)), ValueError,
     r"example for kind='step' must be \[N, C=3, H, W\]"),
    (dict(format='onnx-int8', calibration=[]), ValueError, 'calibration is empty'),
    (dict(format='onnx-int8', calibration=torch.zeros(2, T, 3, 16, 16),
          example=torch.zeros(1, T, 3, SIZE, SIZE)), ValueError,
     r'calibration clip 0 must be \[N, 3, 3, 32, 32\] .* got shape \(2, 3, 3, 16, 16\)'),
    (dict(format='onnx-int8', calibration=torch.zeros(2, 5, 3, SIZE, SIZE)), ValueError,
     r'calibration clip 0 must be \[N, 3, 3, 32, 32\]'),
    (dict(format='onnx-int8', calibration=[torch.zeros(3, SIZE, SIZE)]), ValueError,
     r'calibration clip 0 must be'),
    (dict(format='onnx-int8', calibration=42), TypeError,
     'calibration must be a folder of videos, a tensor'),
    (dict(format='onnx-int8'), ValueError, 'calibration is missing: int8 needs clips'),
    (dict(format='onnx', calibration=torch.zeros(1, T, 3, SIZE, SIZE)), ValueError,
     "calibration is for the int8 formats, not format='onnx'"),
])
def test_bad_arguments(tmp_path: Path, model, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        tsmnet.export(model, tmp_path / 'out.onnx', **kwargs)
    _nothing_in(tmp_path)


def test_missing_and_empty_calibration_folders(tmp_path: Path, model) -> None:
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(ValueError, match='calibration folder not found: .*nowhere'):
        tsmnet.export(model, out / 'm.onnx', format='onnx-int8', calibration=tmp_path / 'nowhere')
    empty = tmp_path / 'videos'
    empty.mkdir()
    (empty / 'notes.txt').write_text('no video here')
    with pytest.raises(ValueError, match='calibration folder .*videos holds no video'):
        tsmnet.export(model, out / 'm.onnx', format='onnx-int8', calibration=empty)
    _nothing_in(out)


def test_a_model_that_cannot_stream(tmp_path: Path) -> None:
    model = ResNetTSM(18, num_segments=T, pretrained=None).eval()  # bidirectional shift
    with pytest.raises(ValueError, match=r"kind='step' needs a model that streams frame by "
                                         r"frame: .*shift_mode='bidirectional'"):
        tsmnet.export(model, tmp_path / 'step.onnx', kind='step')
    _nothing_in(tmp_path)


def test_not_a_model_and_wrong_suffix(tmp_path: Path, model) -> None:
    with pytest.raises(TypeError, match='model must be a tsmnet backbone .* got Linear'):
        tsmnet.export(torch.nn.Linear(2, 2), tmp_path / 'm.onnx')
    with pytest.raises(ValueError, match=r"path must end with .onnx for format='onnx'"):
        tsmnet.export(model, tmp_path / 'm.pte')
    _nothing_in(tmp_path)


def test_unwritable_path(tmp_path: Path, model) -> None:
    with pytest.raises(WriteError, match='cannot write /proc/tsmnet-nope/m.onnx'):
        tsmnet.export(model, '/proc/tsmnet-nope/m.onnx', example=clips(1))
    (tmp_path / 'folder.onnx').mkdir()
    with pytest.raises(WriteError, match='it is a folder'):
        tsmnet.export(model, tmp_path / 'folder.onnx', example=clips(1))
    assert [p.name for p in tmp_path.iterdir()] == ['folder.onnx']
