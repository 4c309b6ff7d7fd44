"""``tsmnet.deploy.runtime``: a clip model and its online step under eager, compile, ONNX Runtime
and OpenVINO, from a Recognizer or an exported file, each within its format's bound of eager.

The bounds: fp32 the export bound (max abs difference <= 1e-3 of max |eager|), bf16 5e-2 (8
bits of mantissa), int8 the export's int8 bound (cosine >= 0.95) and the same top class.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from conftest import T, causal_r18, clips

import tsmnet
from tsmnet.deploy.report import BOUNDS
from tsmnet.deploy.runtime import PRECISIONS, RUNTIMES, clip_runner, step_runner

OPENVINO = importlib.util.find_spec('openvino') is not None and \
    importlib.util.find_spec('nncf') is not None
TORCHAO = importlib.util.find_spec('torchao') is not None
SIZE = 32
NEEDS = {'openvino': pytest.mark.skipif(not OPENVINO, reason='the openvino extra is not '
                                        'installed (openvino, nncf)')}


@pytest.fixture(scope='module')
def recognizer() -> tsmnet.Recognizer:
    head = tsmnet.TSMHead(5, 512, num_segments=T)
    torch.manual_seed(3)
    torch.nn.init.normal_(head.fc_cls.weight, std=0.1)
    return tsmnet.Recognizer(causal_r18(), head).eval()


@pytest.fixture(scope='module')
def calibration() -> list[torch.Tensor]:
    return [clips(2, seed=s) for s in range(3)]


def assert_within_bound(got: torch.Tensor, ref: torch.Tensor, precision: str) -> None:
    assert got.shape == ref.shape and got.dtype == torch.float32
    relative = float((got - ref).abs().max() / ref.abs().max())
    cosine = float(torch.nn.functional.cosine_similarity(got.double().flatten(),
                                                         ref.double().flatten(), dim=0))
    if precision == 'fp32':
        assert relative <= BOUNDS['onnx'][0], relative
    elif precision == 'bf16':
        assert relative <= 5e-2, relative
    else:
        assert cosine >= BOUNDS['onnx-int8'][1], cosine
        assert torch.equal(got.argmax(1), ref.argmax(1))


def streamed_mean(runner, video: torch.Tensor) -> torch.Tensor:
    """The mean of the frame scores of ``video`` ``[N, T, C, H, W]`` streamed frame by frame."""
    return sum(runner(video[:, t]) for t in range(video.shape[1])) / video.shape[1]


CASES = [(rt, p) for rt in RUNTIMES for p in PRECISIONS[rt]]


def _marks(runtime: str, precision: str) -> list:
    marks = [NEEDS[runtime]] if runtime in NEEDS else []
    if runtime == 'compile' and precision == 'int8' and not TORCHAO:
        marks.append(pytest.mark.skip(reason='the x86 extra is not installed (torchao)'))
    if runtime != 'eager':  # compiles or exports
        marks.append(pytest.mark.slow)
    return marks


@pytest.mark.parametrize('runtime, precision',
                         [pytest.param(rt, p, marks=_marks(rt, p)) for rt, p in CASES])
def test_clip_runner_agrees_with_eager(recognizer, calibration, runtime, precision):
    runner = clip_runner(recognizer, runtime, precision, size=SIZE,
                         calibration=calibration if precision == 'int8' else None)
    assert (runner.runtime, runner.precision, runner.source) == (runtime, precision, 'model')
    assert runner.scores and runner.num_segments == T
    video = clips(3, seed=7)
    with torch.no_grad():
        ref = recognizer(video)
    for batch in (1, 3):  # any batch size
        assert_within_bound(runner(video[:batch]), ref[:batch], precision)
    if runtime in ('onnxruntime', 'openvino'):  # exported and checked on the way
        assert runner.report is not None and runner.report.ok, runner.report.lines()
        assert runner.frame_size == (SIZE, SIZE)


STEP_CASES = [(rt, p) for rt, p in CASES if not (rt == 'compile' and p == 'int8')]


@pytest.mark.parametrize('runtime, precision',
                         [pytest.param(rt, p, marks=_marks(rt, p)) for rt, p in STEP_CASES])
def test_step_runner_streams_the_clip_scores(recognizer, calibration, runtime, precision):
    """The mean of the step's frame scores is the clip's score (TSM's consensus, online)."""
    runner = step_runner(recognizer, runtime, precision, size=SIZE,
                         calibration=calibration if precision == 'int8' else None)
    assert (runner.runtime, runner.precision, runner.num_sites) == (runtime, precision, 8)
    video = clips(2, seed=8)
    with torch.no_grad():
        ref = recognizer(video)
    assert_within_bound(streamed_mean(runner, video), ref, precision)
    runner.reset()  # a new video, of one stream now
    assert_within_bound(streamed_mean(runner, video[1:]), ref[1:], precision)


def test_step_runner_resets_one_stream(recognizer):
    runner = step_runner(recognizer)
    video = clips(2, seed=9)
    streamed_mean(runner, video)
    runner.reset(0)  # stream 0 starts again; stream 1 goes on
    first = runner(video[:, 0])
    fresh = step_runner(recognizer)(video[:1, 0])
    torch.testing.assert_close(first[:1], fresh)
    assert not torch.allclose(first[1:], fresh)
    with pytest.raises(IndexError, match=r'index must name streams in range\(2\), got 5'):
        runner.reset(5)
    with pytest.raises(ValueError, match=r'frames must keep the shape of the first step'):
        runner(video[:1, 0])


@pytest.mark.slow
@pytest.mark.parametrize('suffix, runtime', [
    ('.onnx', 'onnxruntime'), pytest.param('.onnx', 'openvino', marks=NEEDS['openvino']),
    pytest.param('.xml', 'openvino', marks=NEEDS['openvino'])])
@pytest.mark.parametrize('int8', [False, True])
def test_runners_from_exported_files(recognizer, calibration, tmp_path, suffix, runtime, int8):
    """A file runs under its runtime at its own precision; another precision is refused."""
    fmt = ('onnx' if suffix == '.onnx' else 'openvino') + ('-int8' if int8 else '')
    video = clips(3, seed=10)
    with torch.no_grad():
        ref = recognizer(video)
    precision = 'int8' if int8 else 'fp32'
    for kind, make in (('clip', clip_runner), ('step', step_runner)):
        path = tmp_path / f'{kind}{suffix}'
        example = clips(1) if kind == 'clip' else clips(1)[:, 0]
        report = tsmnet.export(recognizer, path, kind=kind, format=fmt, example=example,
                               calibration=calibration if int8 else None)
        assert report.ok, report.lines()
        if int8 and suffix == '.onnx' and runtime == 'openvino':
            with pytest.raises(ValueError, match="ONNX Runtime's int8 .* which OpenVINO does "
                                                 'not read'):
                make(path, runtime)
            continue
        runner = make(path, runtime)
        assert (runner.runtime, runner.precision, runner.source) == (runtime, precision,
                                                                     str(path))
        assert runner.scores and runner.frame_size == (SIZE, SIZE) and runner.report is None
        got = runner(video) if kind == 'clip' else streamed_mean(runner, video)
        assert_within_bound(got, ref, precision)
        wrong = 'fp32' if int8 else 'int8'
        with pytest.raises(ValueError, match=f"precision='{wrong}' is not what {path.name} "
                                             f'holds: a {precision} file'):
            make(path, runtime, wrong)
    if int8 and suffix == '.onnx' and runtime == 'openvino':
        return
    with pytest.raises(ValueError, match=r'is not an exported step: expected inputs frames'):
        step_runner(tmp_path / f'clip{suffix}', runtime)
    with pytest.raises(ValueError, match=r'is not an exported clip model'):
        clip_runner(tmp_path / f'step{suffix}', runtime)
    with pytest.raises(ValueError, match=r'clips must be \[B, 3, 3, 32, 32\] \(\[B, T, C, H, '
                                         r'W\]\), got shape \(1, 3, 3, 64, 64\)'):
        clip_runner(tmp_path / f'clip{suffix}', runtime)(torch.zeros(1, T, 3, 64, 64))


@pytest.mark.skipif(not OPENVINO, reason='the openvino extra is not installed')
@pytest.mark.slow
def test_openvino_bf16_of_an_fp32_file(recognizer, tmp_path):
    path = tmp_path / 'clip.xml'
    tsmnet.export(recognizer, path, format='openvino', example=clips(1))
    runner = clip_runner(path, precision='bf16')
    video = clips(2, seed=11)
    with torch.no_grad():
        assert_within_bound(runner(video), recognizer(video), runner.precision)


def test_bad_arguments_are_named(recognizer, tmp_path):
    with pytest.raises(ValueError, match=r"runtime must be one of \('eager', 'compile', "
                                         r"'onnxruntime', 'openvino'\), got 'tensorrt'"):
        clip_runner(recognizer, 'tensorrt')
    with pytest.raises(ValueError, match=r"precision='int8' is not offered by "
                                         r"runtime='eager': expected one of \('fp32', 'bf16'\)"):
        clip_runner(recognizer, 'eager', 'int8')
    with pytest.raises(ValueError, match=r"precision='int8' needs calibration clips"):
        clip_runner(recognizer, 'onnxruntime', 'int8')
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16', "
                                         r"'int8'\) or None, got 'fp16'"):
        step_runner(recognizer, 'eager', 'fp16')
    with pytest.raises(ValueError, match=r'threads must be a positive int or None, got 0'):
        clip_runner(recognizer, threads=0)
    with pytest.raises(TypeError, match=r'source must be a tsmnet model .* got int'):
        clip_runner(3)
    with pytest.raises(FileNotFoundError, match=r'source file not found: .*missing.onnx'):
        clip_runner(tmp_path / 'missing.onnx')
    (tmp_path / 'model.pt').write_bytes(b'')
    with pytest.raises(ValueError, match=r'source must be a model, an .onnx or an OpenVINO '
                                         r'.xml file'):
        clip_runner(tmp_path / 'model.pt')
    (tmp_path / 'model.xml').write_bytes(b'')
    with pytest.raises(ValueError, match=r"runtime='onnxruntime' runs a model, not a file; a "
                                         r".xml file runs under 'openvino'"):
        clip_runner(tmp_path / 'model.xml', 'onnxruntime')
    with pytest.raises(ValueError, match=r"runtime='eager' runs a model, not a file"):
        clip_runner(tmp_path / 'model.xml', 'eager')


def test_bad_clips_are_named(recognizer):
    runner = clip_runner(recognizer)
    with pytest.raises(ValueError, match=r'clips must be \[B, 3, C, H, W\] \(\[B, T, C, H, W\]\)'
                                         r', got shape \(1, 4, 3, 32, 32\)'):
        runner(torch.zeros(1, 4, 3, SIZE, SIZE))
    with pytest.raises(TypeError, match=r'clips must be a floating-point tensor, got '
                                        r'torch.uint8'):
        runner(torch.zeros(1, T, 3, SIZE, SIZE, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r'clips must be a torch.Tensor'):
        runner([0])
    with pytest.raises(ValueError, match=r'frames must be \[N, C, H, W\] \(\[N, C, H, W\]\), '
                                         r'got shape \(1, 3, 3, 32, 32\)'):
        step_runner(recognizer)(torch.zeros(1, T, 3, SIZE, SIZE))


def test_a_backbone_runs_to_features():
    model = causal_r18()
    video = clips(2, seed=12)
    runner = clip_runner(model)
    assert not runner.scores
    with torch.no_grad():
        torch.testing.assert_close(runner(video), model(video.flatten(0, 1)))
    step = step_runner(model)
    assert not step.scores and step(video[:, 0]).shape == (2, 512, 1, 1)


def test_exported_step_names_a_bad_runtime_or_precision(recognizer):
    from tsmnet.predictor import exported_step

    with pytest.raises(ValueError, match=r"runtime of an exported step must be one of "
                                         r"\['onnxruntime', 'openvino'\], got 'compile'"):
        exported_step(recognizer, 56, runtime='compile')
    with pytest.raises(ValueError, match=r"precision of an onnxruntime step must be one of "
                                         r"\['fp32', 'int8'\], got 'bf16'"):
        exported_step(recognizer, 56, 'bf16')
    with pytest.raises(ValueError, match=r"precision='int8' needs calibration clips"):
        exported_step(recognizer, 56, 'int8', runtime='openvino')
