"""``tsmnet.export``: write a model (whole clips or the online step) to ONNX fp32, ONNX int8,
ExecuTorch or OpenVINO (fp32, int8), then run the file by its runtime and compare it with eager
PyTorch."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..fileio import WriteError
from ..shift.functional import flat_frames
from ..stream import step_names
from . import executorch as et
from . import openvino as ov
from .calibration import calibration_clips, normalise_unit_clips, smooth_clips, step_feeds
from .modules import Exportable, as_exportable
from .onnx import OPSET, write_onnx
from .quantize import Int8Options, quantize_onnx
from .report import ExportReport
from .verify import compare, eager_runner, onnx_runner, stream_outputs

__all__ = ['FORMATS', 'KINDS', 'export']

logger = logging.getLogger(__name__)

Format = Literal['onnx', 'onnx-int8', 'pte', 'pte-int8', 'openvino', 'openvino-int8']
Kind = Literal['clip', 'step']
FORMATS: tuple[str, ...] = ('onnx', 'onnx-int8', 'pte', 'pte-int8', 'openvino', 'openvino-int8')
KINDS: tuple[str, ...] = ('clip', 'step')
SUFFIXES = {'onnx': '.onnx', 'onnx-int8': '.onnx', 'pte': '.pte', 'pte-int8': '.pte',
            'openvino': '.xml', 'openvino-int8': '.xml'}
DEFAULT_SIZE = 224


def _check_writable(path: Path) -> None:
    """Fail before the (long) export when ``path`` cannot be written; leaves nothing."""
    if path.is_dir():
        raise WriteError(f'cannot write {path}: it is a folder; expected a file name')
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}; nothing was written '
                         f'there') from err


def _check_example(ex: Exportable, kind: str, example: Any) -> torch.Tensor | None:
    if example is None:
        return None
    if not isinstance(example, torch.Tensor) or not example.is_floating_point():
        raise TypeError(f'example must be a floating-point tensor, got '
                        f'{getattr(example, "dtype", type(example).__name__)}')
    if kind == 'clip':
        ok = example.dim() == 5 and example.shape[1] == ex.num_segments
        expected = f'[N, T={ex.num_segments}, C={ex.in_channels}, H, W] (a batch of clips)'
        channels = example.shape[2] if example.dim() == 5 else None
    else:
        ok = example.dim() == 4
        expected = f'[N, C={ex.in_channels}, H, W] (one frame of each of N streams)'
        channels = example.shape[1] if example.dim() == 4 else None
    if not ok or channels != ex.in_channels or example.shape[0] < 1:
        raise ValueError(f"example for kind={kind!r} must be {expected}, got shape "
                         f'{tuple(example.shape)}')
    return example.detach().float().contiguous()


def _size(example: torch.Tensor | None, calibration: Any) -> tuple[int, int]:
    """The frame size: the example's, else the calibration clips', else 224 x 224."""
    if example is not None:
        return int(example.shape[-2]), int(example.shape[-1])
    first = calibration if isinstance(calibration, torch.Tensor) else (
        calibration[0] if isinstance(calibration, list) and calibration else None)
    if isinstance(first, torch.Tensor) and first.dim() >= 2:
        return int(first.shape[-2]), int(first.shape[-1])
    return DEFAULT_SIZE, DEFAULT_SIZE


def _check_clip(ex: Exportable, size: tuple[int, int]) -> torch.Tensor:
    """A clip ``[2, T, C, H, W]`` to check a file on: smooth random frames (seeded)."""
    return smooth_clips(2, max(ex.num_segments, 2), ex.in_channels, size)


def export(model: nn.Module, path: str | os.PathLike, *, kind: Kind = 'clip',
           format: Format = 'onnx', example: torch.Tensor | None = None,
           calibration: Any = None, int8: Int8Options | None = None,
           opset_version: int = OPSET) -> ExportReport:
    """Write ``model`` to ``path`` and check the file against eager PyTorch.

    Args:
        model: A tsmnet backbone (ResNetTSM, MobileNetV2TSM, ResNet, MobileNetV2) or a
            :class:`~tsmnet.Recognizer` on one. It is run in eval mode (its mode is restored
            afterwards).
        path: The file to write (``.onnx``, ``.pte`` or ``.xml``), atomically: a failed export
            leaves the previous file and nothing else.
        kind: ``'clip'`` (default): whole clips ``[N, T, C, H, W]`` with ``N`` dynamic in
            ONNX; ``'step'``: the online step, ``(frames [N, C, H, W], buffer_0 ...) ->
            (scores or features, new_buffer_0 ...)``, one frame of each of ``N`` streams,
            needing a causal model (``shift_mode='causal'``).
        format: ``'onnx'`` (default, fp32), ``'onnx-int8'`` (ONNX Runtime static
            quantization), ``'pte'`` or ``'pte-int8'`` (ExecuTorch with the XNNPACK delegate;
            the ``mobile`` extra), ``'openvino'`` (IR ``.xml`` + ``.bin``, fp32 weights; the
            precision, f32 or bf16, is chosen at load: :func:`tsmnet.deploy.openvino.
            openvino_runner`; checked here in f32) or ``'openvino-int8'`` (NNCF
            post-training quantization); the ``openvino`` extra.
        example: An input: ``[N, T, C, H, W]`` (clip) or ``[N, C, H, W]`` (step). Its frame
            size is fixed in the file (and ``N`` for ``.pte``). Defaults to the first
            calibration clip (int8), else a smooth random clip at 224 x 224 (or its frame).
        calibration: For int8 (needed): a tensor ``[N, T, C, H, W]`` in the model's input
            space, an iterable of them, or a folder of videos (``tsmnet export`` defaults to
            the demo's generated clips, a quick start).
        int8: How ONNX Runtime quantizes. Defaults to :class:`Int8Options()`.
        opset_version: ONNX opset. Defaults to 18.

    Returns:
        The :class:`ExportReport` (``report.ok`` tells whether the file agrees with eager
        within its format's bound).

    Raises:
        ValueError: An unknown ``kind`` or ``format``, a model that cannot stream for
            ``kind='step'``, an example or calibration data of the wrong shape, or empty.
        TypeError: A model export does not know.
        WriteError: ``path`` cannot be written.
    """
    start = time.perf_counter()
    if kind not in KINDS:
        raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')
    if format not in FORMATS:
        raise ValueError(f'format must be one of {FORMATS}, got {format!r}')
    path = Path(path)
    if path.suffix != SUFFIXES[format]:
        raise ValueError(f'path must end with {SUFFIXES[format]} for format={format!r}, got '
                         f'{str(path)!r}')
    if format.startswith('pte'):
        et.require()
    if format.startswith('openvino'):
        ov.require(int8=format.endswith('int8'))
    ex = as_exportable(model)
    step = ex.step_module() if kind == 'step' else None
    example = _check_example(ex, kind, example)
    training = model.training
    model.eval()
    try:
        if isinstance(calibration, Iterable) and not isinstance(calibration, (str, Path,
                                                                              torch.Tensor)):
            calibration = list(calibration)  # read once (it may be a generator)
        size = _size(example, calibration)
        frame_shape = (max(ex.num_segments, 2) if kind == 'step' else ex.num_segments,
                       ex.in_channels, *size)
        clips: list[torch.Tensor] = []
        if format.endswith('int8'):
            clips = calibration_clips(calibration, frame_shape, needs_t=kind == 'clip',
                                      unit_to_input=normalise_unit_clips)
            check_clip = clips[0]
        elif calibration is not None:
            raise ValueError(f'calibration is for the int8 formats, not format={format!r}')
        else:
            check_clip = _check_clip(ex, size)
        if example is None:
            example = check_clip[:1] if kind == 'clip' else check_clip[:1, 0]
        _check_writable(path)
        if kind == 'clip':
            report = _export_clip(ex, path, format, example, check_clip, clips, int8,
                                  opset_version)
        else:
            assert step is not None
            report = _export_step(ex, step, path, format, example, check_clip, clips, int8,
                                  opset_version)
    finally:
        model.train(training)
    report.seconds = time.perf_counter() - start
    for line in report.lines():
        logger.info(line)
    if not report.ok:
        logger.warning('%s disagrees with eager beyond its bound (%s)', path, report.bound)
    return report


def _int8_note(options: Int8Options) -> str:
    return (f'int8: {options.quant_format}, activations {options.activations}, weights '
            f'{options.weights}{" per channel" if options.per_channel else ""}'
            f'{", reduce_range" if options.reduce_range else ""}, {options.calibrate_method} '
            f'calibration')


def _write(format: str, module: nn.Module, args: tuple[torch.Tensor, ...], path: Path,
           names: tuple[list[str], list[str]], dynamic: Any, feeds: Any,
           int8: Int8Options | None, opset: int) -> list[str]:
    """Write one file; returns notes."""
    inputs, outputs = names
    # the shift with flat frames: ONNX Runtime keeps each conv's channels-last layout through
    # it; int8 zeroes clip boundaries with a product, which it quantizes (a Where it cannot)
    if format == 'onnx':
        with flat_frames('select'):
            write_onnx(module, args, path, input_names=inputs, output_names=outputs,
                       dynamic_shapes=dynamic, opset_version=opset)
        return []
    if format == 'onnx-int8':
        options = int8 or Int8Options()
        with tempfile.TemporaryDirectory(prefix='tsmnet-export.') as tmp, \
                flat_frames('multiply'):
            fp32 = Path(tmp) / 'fp32.onnx'
            write_onnx(module, args, fp32, input_names=inputs, output_names=outputs,
                       dynamic_shapes=dynamic, opset_version=opset)
            quantize_onnx(fp32, path, feeds, options)
        return [_int8_note(options)]
    if format.startswith('openvino'):
        int8_feeds = feeds if format.endswith('int8') else None
        ov.write_openvino(module, args, path, dynamic, int8_feeds, names)
        return ['OpenVINO IR, fp32 weights; checked with the f32 inference precision hint (bf16 '
                'is chosen at load)' if int8_feeds is None else
                'OpenVINO IR, int8 (NNCF post-training quantization, min-max)']
    if format == 'pte':
        et.write_pte(module, args, path)
        return ['ExecuTorch, XNNPACK delegate, fp32']
    et.write_pte_int8(module, args, path, feeds)
    return ['ExecuTorch, XNNPACK delegate, int8 (PT2E, XNNPACKQuantizer, per channel)']


def _size_bytes(path: Path) -> int:
    """The file's size; with an OpenVINO ``.xml``, its ``.bin`` (the weights) too."""
    weights = path.with_suffix('.bin')
    return path.stat().st_size + (weights.stat().st_size if path.suffix == '.xml' else 0)


def _runner(format: str, path: Path):
    if format.startswith('openvino'):
        return ov.openvino_runner(path, 'f32')
    return onnx_runner(str(path)) if format.startswith('onnx') else et.pte_runner(path)


def _export_clip(ex: Exportable, path: Path, format: str, example: torch.Tensor,
                 check_clip: torch.Tensor, clips: Sequence[torch.Tensor],
                 int8: Int8Options | None, opset: int) -> ExportReport:
    module = ex.clip_module
    eager = eager_runner(module)
    num_outputs = len(eager([example]))
    inputs = ['clips']
    outputs = (['scores'] if ex.scores else step_names(num_outputs, 0)[1])
    static = format.startswith('pte')
    args = (example if static or example.shape[0] >= 2
            else torch.cat([example, check_clip[:1]]),)  # N = 1 would be pinned
    dynamic = None if static else ({0: torch.export.Dim('clips', min=1, max=1024)},)
    notes = _write(format, module, args, path, (inputs, outputs), dynamic,
                   ([c] for c in clips), int8, opset)
    run = _runner(format, path)
    checks = {'example': compare(eager([example])[:1], run([example])[:1])}
    if not static:  # another batch size
        other = torch.cat([example, check_clip])[:example.shape[0] + 1]
        checks[f'batch of {other.shape[0]}'] = compare(eager([other])[:1], run([other])[:1])
    return ExportReport(path=path, format=format, kind='clip', inputs=inputs, outputs=outputs,
                        size_bytes=_size_bytes(path), checks=checks, notes=notes)


def _export_step(ex: Exportable, step: nn.Module, path: Path, format: str,
                 example: torch.Tensor, check_clip: torch.Tensor,
                 clips: Sequence[torch.Tensor], int8: Int8Options | None,
                 opset: int) -> ExportReport:
    eager = eager_runner(step)
    buffers = ex.zero_buffers(example)
    num_outputs = len(eager([example, *buffers])) - len(buffers)
    inputs, outputs = step_names(0 if ex.scores else num_outputs, len(buffers))
    static = format.startswith('pte')
    if static or example.shape[0] >= 2:
        args = (example, *buffers)
    else:  # an example of one stream would pin N to 1
        frames = example.expand(2, *example.shape[1:]).contiguous()
        args = (frames, *ex.zero_buffers(frames))
    dynamic = None
    if not static:
        streams = torch.export.Dim('streams', min=1, max=1024)
        dynamic = {'frames': {0: streams}}
        if buffers:  # a plain ResNet or MobileNetV2 has none
            dynamic['buffers'] = tuple({0: streams} for _ in buffers)
    feeds = step_feeds(step, clips, ex.zero_buffers, num_outputs)
    notes = _write(format, step, args, path, (inputs, outputs), dynamic, feeds, int8, opset)
    run = _runner(format, path)
    checks = {'example': compare(eager([example, *buffers])[:1],
                                 run([example, *buffers])[:1])}
    streamed = check_clip[:example.shape[0]] if static else check_clip
    if streamed.shape[0] == example.shape[0] or not static:
        start = ex.zero_buffers(streamed[:, 0])
        checks[f'streamed clip ({streamed.shape[0]} x {streamed.shape[1]} frames)'] = compare(
            stream_outputs(eager, streamed, start, num_outputs),
            stream_outputs(run, streamed, start, num_outputs))
    return ExportReport(path=path, format=format, kind='step', inputs=inputs, outputs=outputs,
                        size_bytes=_size_bytes(path), checks=checks, notes=notes)
