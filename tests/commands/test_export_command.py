"""``tsmnet export`` and ``tsmnet stream --onnx``: the report, exit 2 beyond the bound, and an
exported step streaming a video as the eager stream does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsmnet.cli import main
from tsmnet.deploy import report as report_module

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

ARGS = ['--backbone', 'resnet18', '--size', '32']


@pytest.mark.slow
def test_step_export_then_stream_equals_eager(tmp_path: Path, capsys) -> None:
    out = tmp_path / 'step.onnx'
    assert main(['export', str(out), *ARGS, '--kind', 'step', '--json',
                 str(tmp_path / 'r.json')]) == 0
    printed = capsys.readouterr().out
    assert f'wrote {out} (onnx, step' in printed and 'ok: max abs difference' in printed
    data = json.loads((tmp_path / 'r.json').read_text())
    assert data['ok'] and data['outputs'][0] == 'features' and len(data['inputs']) == 9
    assert data['checks']['example']['max_abs_diff'] < 1e-3

    assert main(['stream', '--onnx', str(out), '--frames', '5', '--quiet',
                 '--json', str(tmp_path / 'onnx.json')]) == 0
    assert main(['stream', '--arch', 'resnet', '--depth', '18', '--size', '32', '--frames',
                 '5', '--quiet', '--json', str(tmp_path / 'eager.json')]) == 0
    onnx_frames = json.loads((tmp_path / 'onnx.json').read_text())['frames']
    eager_frames = json.loads((tmp_path / 'eager.json').read_text())['frames']
    assert [f['top_feature'] for f in onnx_frames] == [f['top_feature'] for f in eager_frames]
    for a, b in zip(onnx_frames, eager_frames):
        assert a['value'] == pytest.approx(b['value'], rel=1e-3, abs=1e-4)


@pytest.mark.slow
def test_int8_beyond_its_bound_exits_2_and_streams(tmp_path: Path, capsys,
                                                   monkeypatch) -> None:
    """The demo's clips calibrate by default; a file beyond its format's bound exits 2 (the
    bound is made impossible here) and is kept for inspection."""
    monkeypatch.setitem(report_module.BOUNDS, 'onnx-int8', (float('inf'), 1.5))
    out = tmp_path / 'step_int8.onnx'
    assert main(['export', str(out), *ARGS, '--kind', 'step', '--format', 'onnx-int8']) == 2
    captured = capsys.readouterr()
    assert 'FAILED: cosine similarity >= 1.5' in captured.out
    assert captured.err.strip().splitlines() == [
        f'tsmnet export: error: {out} disagrees with eager beyond its bound (cosine similarity '
        f'>= 1.5); the file is kept for inspection']
    assert main(['stream', '--onnx', str(out), '--frames', '3']) == 0
    assert 'streaming a generated clip through an exported step' in capsys.readouterr().out


@pytest.mark.parametrize('argv, message', [
    (['--format', 'onnx', '--calibration', 'videos'],
     '--calibration is for the int8 formats, not --format onnx'),
    (['--size', '8'], '--size must be >= 32, got 8'),
])
def test_bad_options(tmp_path: Path, capsys, argv, message) -> None:
    assert main(['export', str(tmp_path / 'm.onnx'), *argv]) == 2
    assert capsys.readouterr().err.strip() == f'tsmnet export: error: {message}'
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_and_a_non_step_file(tmp_path: Path, capsys) -> None:
    assert main(['export', '/proc/tsmnet-nope/m.onnx', *ARGS]) == 2
    assert capsys.readouterr().err.startswith(
        'tsmnet export: error: cannot write /proc/tsmnet-nope/m.onnx')
    bogus = tmp_path / 'bogus.onnx'
    bogus.write_bytes(b'not onnx')
    assert main(['stream', '--onnx', str(bogus)]) == 2
    assert 'is not an ONNX model ONNX Runtime can load' in capsys.readouterr().err
