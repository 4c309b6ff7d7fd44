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
    assert main(['stream', '--backbone', 'resnet18', '--size', '32', '--frames',
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


@pytest.mark.slow
def test_output_as_an_option(tmp_path: Path) -> None:
    """``-o FILE`` as well as the positional OUT (a user's first try)."""
    out = tmp_path / 'm.onnx'
    assert main(['export', '-o', str(out), *ARGS, '--kind', 'clip']) == 0
    assert out.stat().st_size > 0


def test_output_given_once(tmp_path: Path, capsys) -> None:
    assert main(['export', str(tmp_path / 'a.onnx'), '--output', str(tmp_path / 'b.onnx'),
                 *ARGS]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f'as OUT or as -o/--output FILE, not both ({tmp_path / "a.onnx"}, {tmp_path / "b.onnx"})')
    assert main(['export', *ARGS]) == 2
    assert capsys.readouterr().err.strip() == ('tsmnet export: error: give the file to write '
                                               'once: as OUT or as -o/--output FILE')
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_and_a_non_step_file(tmp_path: Path, capsys) -> None:
    assert main(['export', '/proc/tsmnet-nope/m.onnx', *ARGS]) == 2
    assert capsys.readouterr().err.startswith(
        'tsmnet export: error: cannot write /proc/tsmnet-nope/m.onnx')
    bogus = tmp_path / 'bogus.onnx'
    bogus.write_bytes(b'not onnx')
    assert main(['stream', '--onnx', str(bogus)]) == 2
    assert 'is not an ONNX model ONNX Runtime can load' in capsys.readouterr().err


R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'


@pytest.fixture(scope='module')
def finetuned(tmp_path_factory) -> tuple[Path, Path]:
    """A causal ResNet-18 fine-tuned for one epoch on two classes of 32x32 videos: the class
    folders and ``checkpoint.pth``."""
    from video_files import moving_frames, write_video

    from tsmnet.train import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp('ft')
    data = root / 'videos'
    for k, name in enumerate(['left', 'right']):
        (data / name).mkdir(parents=True)
        for i in range(3):
            frames = moving_frames(10 + i, 36, 48, seed=10 * k + i)
            write_video(data / name / f'{i}.mp4', frames[:, :, ::-1] if k else frames)
    finetune(FinetuneConfig(data_dir=str(data), model=R50, weights='none', depth=18, size=32,
                            epochs=1, batch=3, val_split=0.0, out=str(root / 'out'), workers=0,
                            shift_mode='causal'))
    return data, root / 'out' / 'checkpoint.pth'


@pytest.mark.slow  # fine-tunes, exports
def test_finetuned_checkpoint_exports_with_its_head(finetuned, tmp_path: Path, capsys) -> None:
    """``export --weights ft/checkpoint.pth`` needs no --model: the ONNX clip model is the
    fine-tuned one (its 2-class head, causal shift, 32x32 frames) and equals it."""
    import numpy as np
    import onnxruntime as ort
    import torch

    import tsmnet

    _, checkpoint = finetuned
    out = tmp_path / 'ft.onnx'
    assert main(['export', str(out), '--weights', str(checkpoint), '--kind', 'clip',
                 '--json', '-']) == 0
    report = json.loads(capsys.readouterr().out)
    assert report['ok'] and report['size'] == 32 and report['kind'] == 'clip'
    model = tsmnet.load(checkpoint)
    assert model.backbone.shift_mode == 'causal' and model.num_classes == 2
    clips = torch.randn(2, model.num_segments, 3, 32, 32, generator=torch.Generator()
                        .manual_seed(0))
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: clips.numpy()})[0]
    with torch.no_grad():
        expected = model(clips).numpy()
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.slow  # fine-tunes, quantizes
def test_int8_calibrates_on_the_class_folders_at_the_model_size(finetuned, tmp_path: Path,
                                                                  capsys) -> None:
    """``--calibration`` takes the class-folder tree finetune trained on (it used to say "holds
    no video") and the step is written at the checkpoint's 32x32 (it used to be 224x224);
    the step is the default for a causal model."""
    data, checkpoint = finetuned
    out = tmp_path / 'ft-int8.onnx'
    status = main(['export', str(out), '--weights', str(checkpoint), '--format', 'onnx-int8',
                   '--calibration', str(data), '--json', str(tmp_path / 'r.json')])
    report = json.loads((tmp_path / 'r.json').read_text())
    assert status in (0, 2)  # int8 beyond its bound exits 2 and keeps the file
    assert report['kind'] == 'step' and report['size'] == 32
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape[-2:] == [32, 32]


def test_weights_without_description_need_a_model(tmp_path: Path, capsys) -> None:
    import torch

    import tsmnet

    model = tsmnet.create_model(R50, depth=18, num_segments=2, num_classes=2)
    torch.save(model.state_dict(), tmp_path / 'bare.pth')
    assert main(['export', str(tmp_path / 'm.onnx'), '--weights',
                 str(tmp_path / 'bare.pth')]) == 2
    assert 'give its zoo name with --model NAME' in capsys.readouterr().err
