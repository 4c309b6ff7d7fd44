"""Running a model under a runtime: one call for eager PyTorch, ``torch.compile``, ONNX Runtime
and OpenVINO, from a model or from an exported file.

:func:`clip_runner` gives a :class:`ClipRunner`, ``runner(clips [B, T, C, H, W]) -> scores
[B, num_classes]`` (any ``B``; backbone features ``[B * T, C', h, w]`` for a backbone or a
backbone's file). :func:`step_runner` gives a :class:`StepRunner` for streaming,
``runner(frames [N, C, H, W]) -> scores [N, num_classes]`` (the frame's scores; features for a
backbone), holding the shift buffers of ``N`` streams between calls. Both say which
``runtime`` and ``precision`` produced the numbers.

Runtimes and precisions (:data:`PRECISIONS`):

- ``'eager'``: the module itself; ``'fp32'``, or ``'bf16'`` through ``torch.autocast``.
- ``'compile'``: ``torch.compile`` of the module (``'fp32'``, ``'bf16'``), or ``'int8'`` from
  :func:`tsmnet.quantize` (PT2E x86 int8, compiled; clip only; needs ``calibration``).
- ``'onnxruntime'``: an ``.onnx`` file (``'fp32'``, or ``'int8'`` for a file written with
  ``format='onnx-int8'``) on ONNX Runtime's CPU provider.
- ``'openvino'``: an OpenVINO IR ``.xml`` (or an ``.onnx``, which OpenVINO reads too) on its CPU
  plugin: ``'fp32'`` or ``'bf16'`` (the inference precision hint, chosen here at load; the
  precision reported is the one the plugin took: a CPU without bf16 runs fp32), or ``'int8'``
  for a file written with ``format='openvino-int8'``.

A file's precision is its own (int8 when it holds quantized operators): ``precision=None``
takes it; asking another raises. From a model, the two file runtimes export it first into a
temporary folder with :func:`tsmnet.export` (which checks the file against eager; the report
is ``runner.report``), at ``size`` (the frame size is fixed in a file; ``N`` stays dynamic).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from . import openvino as ov
from .api import export
from .calibration import smooth_clips
from .modules import Exportable, as_exportable
from .quantize import Int8Options
from .report import ExportReport
from .verify import onnx_runner
from .x86 import quantize

__all__ = ['PRECISIONS', 'RUNTIMES', 'ClipRunner', 'StepRunner', 'clip_runner', 'step_runner']

logger = logging.getLogger(__name__)

Runtime = Literal['eager', 'compile', 'onnxruntime', 'openvino']
Precision = Literal['fp32', 'bf16', 'int8']
RUNTIMES: tuple[str, ...] = ('eager', 'compile', 'onnxruntime', 'openvino')
PRECISIONS: dict[str, tuple[str, ...]] = {
    'eager': ('fp32', 'bf16'), 'compile': ('fp32', 'bf16', 'int8'),
    'onnxruntime': ('fp32', 'int8'), 'openvino': ('fp32', 'bf16', 'int8')}
FILE_SUFFIXES = {'.onnx': ('onnxruntime', 'openvino'), '.xml': ('openvino',)}
DEFAULT_SIZE = 224
# operators that only a quantized ONNX graph holds (QOperator and QDQ formats)
_INT8_ONNX_OPS = {'QLinearConv', 'QLinearMatMul', 'QuantizeLinear', 'DequantizeLinear',
                  'ConvInteger', 'MatMulInteger', 'QGemm', 'DynamicQuantizeLinear'}

Forward = Callable[[Sequence[torch.Tensor]], list[torch.Tensor]]


class _Program:
    """What runs: ``forward(inputs) -> outputs`` and what is known of its inputs and outputs.

    ``input_shapes``: per input, its dims (None where dynamic) or None when unknown (a model);
    ``scores``: the first output is class scores ``[N, K]`` (else features).
    """

    def __init__(self, forward: Forward, runtime: str, precision: str, source: str,
                 scores: bool, input_shapes: list[tuple[int | None, ...]] | None = None,
                 num_outputs: int = 1, report: ExportReport | None = None,
                 exportable: Exportable | None = None) -> None:
        self.forward, self.runtime, self.precision, self.source = (forward, runtime, precision,
                                                                   source)
        self.scores, self.input_shapes, self.num_outputs = scores, input_shapes, num_outputs
        self.report, self.exportable = report, exportable


class ClipRunner:
    """A clip model under one runtime: ``runner(clips) -> scores``.

    Attributes:
        runtime: One of :data:`RUNTIMES`.
        precision: ``'fp32'``, ``'bf16'`` or ``'int8'``: what produced the numbers.
        source: ``'model'`` or the file's path.
        num_segments: ``T`` of a clip.
        frame_size: ``(H, W)`` fixed by the file, or None (a model takes any size).
        scores: True when the output is class scores ``[B, K]``; False for a backbone's
            features ``[B * T, C', h, w]``.
        report: The export's check against eager when the runner exported the model itself
            (:func:`tsmnet.export`), else None.
    """

    def __init__(self, program: _Program, num_segments: int) -> None:
        self._program = program
        self.runtime, self.precision = program.runtime, program.precision
        self.source, self.scores, self.report = program.source, program.scores, program.report
        self.num_segments = num_segments
        shape = program.input_shapes[0] if program.input_shapes else None
        self.frame_size: tuple[int, int] | None = (
            (int(shape[3]), int(shape[4])) if shape and None not in shape[3:] else None)
        self._channels = shape[2] if shape else None

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        """Scores of ``clips``.

        Args:
            clips: Normalised frames ``[B, T, C, H, W]``, any ``B >= 1``; for the file
                runtimes on the CPU in float32 (other dtypes and devices are converted).

        Returns:
            ``[B, num_classes]`` (backbone features ``[B * T, C', h, w]``), on the CPU for the
            file runtimes, else on the model's device.

        Raises:
            TypeError, ValueError: ``clips`` is not a floating-point tensor of that shape
                (``T = num_segments``, and the file's ``C, H, W``).
        """
        _check(clips, 'clips', 5, '[B, T, C, H, W]',
               (None, self.num_segments, self._channels, *(self.frame_size or (None, None))))
        return self._program.forward([clips])[0]

    def __repr__(self) -> str:
        return (f'ClipRunner(runtime={self.runtime!r}, precision={self.precision!r}, '
                f'source={self.source!r}, num_segments={self.num_segments}, '
                f'frame_size={self.frame_size})')


class StepRunner:
    """A model's online step under one runtime, with the shift buffers of ``N`` streams.

    ``runner(frames)`` runs the next frame of each stream and returns that frame's scores
    (a recogniser: ``[N, K]``; a clip's score is the mean of its frame scores so far, TSM's
    average consensus online) or features (a backbone: ``[N, C', h, w]``). The buffers are
    zeros before the first frame, sized by it; ``N`` and the frame size stay those of the
    first call until :meth:`reset` with no index.

    The exported step it runs is :func:`tsmnet.export`'s ``kind='step'``: inputs ``frames``
    ``[N, C, H, W]`` and ``buffer_0 ...`` (one per shift site), outputs ``scores`` (or
    ``features``) and ``new_buffer_0 ...``; the runner feeds each call's new buffers to the
    next (:attr:`buffers`).

    Attributes:
        runtime, precision, source, scores, report: As for :class:`ClipRunner`.
        num_sites: Shift sites (buffers).
        frame_size: ``(H, W)`` fixed by the file, or None.
    """

    def __init__(self, program: _Program, num_sites: int) -> None:
        self._program = program
        self.runtime, self.precision = program.runtime, program.precision
        self.source, self.scores, self.report = program.source, program.scores, program.report
        self.num_sites = num_sites
        shape = program.input_shapes[0] if program.input_shapes else None
        self.frame_size: tuple[int, int] | None = (
            (int(shape[2]), int(shape[3])) if shape and None not in shape[2:] else None)
        self._channels = shape[1] if shape else None
        self.buffers: list[torch.Tensor] = []
        self._shape: tuple[int, ...] | None = None

    def _zero_buffers(self, frames: torch.Tensor) -> list[torch.Tensor]:
        program = self._program
        if program.exportable is not None:  # in the activations' dtype (bf16 under autocast)
            with _autocast(frames.device.type, program.precision):
                return program.exportable.zero_buffers(frames)
        assert program.input_shapes is not None
        return [torch.zeros([frames.shape[0] if d is None else d for d in shape])
                for shape in program.input_shapes[1:]]

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Run the next frame of every stream.

        Args:
            frames: ``[N, C, H, W]``, one normalised frame of each of ``N`` streams.

        Returns:
            The frame's scores ``[N, K]`` (features ``[N, C', h, w]`` for a backbone).

        Raises:
            TypeError, ValueError: ``frames`` is not a floating-point ``[N, C, H, W]`` tensor
                of the first call's shape (and the file's ``C, H, W``).
        """
        _check(frames, 'frames', 4, '[N, C, H, W]',
               (None, self._channels, *(self.frame_size or (None, None))))
        shape = tuple(frames.shape)
        if self._shape is None:
            self.buffers = self._zero_buffers(frames)
            self._shape = shape
        elif shape != self._shape:
            raise ValueError(f'frames must keep the shape of the first step {self._shape} (N '
                             f'streams, C, H, W), got {shape}: the buffers are sized by it; '
                             f'call reset() first for another number of streams or size')
        outputs = self._program.forward([frames, *self.buffers])
        self.buffers = outputs[self._program.num_outputs:]
        return outputs[0]

    def reset(self, index: int | Sequence[int] | None = None) -> None:
        """Forget the past of every stream (``index=None``: the next call may change ``N`` or
        the frame size), or zero the buffers of the streams in ``index``."""
        if index is None:
            self.buffers, self._shape = [], None
            return
        rows = [index] if isinstance(index, int) else list(index)
        n = self._shape[0] if self._shape else 0
        for i in rows:
            if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n:
                raise IndexError(f'index must name streams in range({n}), got {index!r}')
        self.buffers = [b.clone() for b in self.buffers]
        for b in self.buffers:
            b[rows] = 0

    def __repr__(self) -> str:
        return (f'StepRunner(runtime={self.runtime!r}, precision={self.precision!r}, '
                f'source={self.source!r}, num_sites={self.num_sites}, '
                f'frame_size={self.frame_size})')


def _check(x: Any, name: str, dims: int, layout: str, expected: tuple[Any, ...]) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor {layout}, got {type(x).__name__}')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor, got {x.dtype}')
    if x.dim() != dims or x.shape[0] < 1 or any(
            e is not None and s != e for s, e in zip(x.shape, expected)):
        want = ', '.join('B' if i == 0 and dims == 5 else 'N' if i == 0 else
                         str(e) if e is not None else letter
                         for i, (e, letter) in enumerate(zip(expected, layout[1:-1].split(', '))))
        raise ValueError(f'{name} must be [{want}] ({layout}), got shape {tuple(x.shape)}')


def _autocast(device: str, precision: str) -> Any:
    """bf16 autocast for ``precision='bf16'`` (PyTorch's mixed precision: convs and matmuls
    in bf16), else nothing."""
    if precision == 'bf16':
        return torch.autocast(device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _torch_forward(module: Any, precision: str) -> Forward:
    """Run a module (or a compiled one) under no-grad, in bf16 through autocast on request."""

    def run(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad(), _autocast(inputs[0].device.type, precision):
            out = module(*inputs)
        outputs = list(out) if isinstance(out, (tuple, list)) else [out]
        if precision == 'bf16':  # scores in float32 (the buffers keep their dtype)
            outputs[0] = outputs[0].float()
        return outputs

    return run


def _onnx_info(path: Path) -> tuple[list[tuple[int | None, ...]], list[str], bool]:
    """Input dims (None where symbolic), output names and whether the graph is quantized."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    shapes = [tuple(d.dim_value if d.HasField('dim_value') else None
                    for d in i.type.tensor_type.shape.dim)
              for i in model.graph.input if i.name not in initializers]
    int8 = any(n.op_type in _INT8_ONNX_OPS for n in model.graph.node)
    return shapes, [o.name for o in model.graph.output], int8


def _openvino_info(path: Path) -> tuple[list[tuple[int | None, ...]], list[str], bool]:
    """Input dims (None where dynamic), output names (``''`` where unnamed) and whether the
    model is quantized."""
    model = ov.core().read_model(str(path))
    shapes = [tuple(d.get_length() if d.is_static else None for d in i.get_partial_shape())
              for i in model.inputs]
    names = [o.get_any_name() if o.get_names() else '' for o in model.outputs]
    int8 = any(op.get_type_name() == 'FakeQuantize' for op in model.get_ops())
    return shapes, names, int8


def _file_program(path: Path, runtime: str | None, precision: str | None,
                  threads: int | None, kind: str) -> _Program:
    if not path.is_file():
        raise FileNotFoundError(f'source file not found: {path}')
    runtimes = FILE_SUFFIXES.get(path.suffix)
    if runtimes is None:
        raise ValueError(f'source must be a model, an .onnx or an OpenVINO .xml file, got '
                         f'{str(path)!r}')
    runtime = runtime or runtimes[0]
    if runtime not in runtimes:
        raise ValueError(f'runtime={runtime!r} runs a model, not a file; a {path.suffix} file '
                         f'runs under {" or ".join(repr(r) for r in runtimes)}')
    if path.suffix == '.onnx':
        shapes, names, int8 = _onnx_info(path)
    else:
        ov.require()
        shapes, names, int8 = _openvino_info(path)
    # tsmnet.export names the first output 'scores' (a recogniser) or 'features...'
    scores = names[0] == 'scores' or (kind == 'clip' and not names[0].startswith('features'))
    own = 'int8' if int8 else 'fp32'
    allowed = ('int8',) if int8 else tuple(p for p in PRECISIONS[runtime] if p != 'int8')
    precision = precision or own
    if precision not in allowed:
        raise ValueError(f'precision={precision!r} is not what {path.name} holds: a '
                         f'{own} file runs as {" or ".join(repr(p) for p in allowed)} under '
                         f'{runtime} (export with format='
                         f'{"onnx" if runtime == "onnxruntime" else "openvino"}-int8 for int8)')
    if runtime == 'openvino' and path.suffix == '.onnx' and int8:
        raise ValueError(f"{path.name} is ONNX Runtime's int8 (QOperator, com.microsoft "
                         f"operators), which OpenVINO does not read: run it under "
                         f"runtime='onnxruntime', or export format='openvino-int8' for OpenVINO")
    _check_kind(path, shapes, kind)
    if kind == 'step' and any(None in shape[1:] for shape in shapes[1:]):
        raise ValueError(f'{path.name}: the buffer shapes must be fixed but for N (an IR '
                         f'written by tsmnet.export since it fixes them; export it again)')
    if runtime == 'onnxruntime':
        session = onnx_runner(str(path), threads)

        def forward(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
            return session([t.detach().cpu().float() for t in inputs])
    else:
        ov.require()
        hint = 'bf16' if precision == 'bf16' else 'f32'
        forward, taken = ov.openvino_runner(path, hint, threads, report=True)
        if precision != 'int8' and taken != hint:
            logger.warning('OpenVINO ran %s in %s: this CPU has no %s', path.name, taken, hint)
            precision = 'bf16' if taken == 'bf16' else 'fp32'
    num_outputs = len(names) - (len(shapes) - 1) if kind == 'step' else 1
    return _Program(forward, runtime, precision, str(path), scores, shapes,
                    num_outputs=num_outputs)


def _check_kind(path: Path, shapes: list[tuple[int | None, ...]], kind: str) -> None:
    rank = len(shapes[0]) if shapes else 0
    if kind == 'clip' and (len(shapes) != 1 or rank != 5):
        raise ValueError(f'{path.name} is not an exported clip model: expected one input '
                         f'[N, T, C, H, W] (tsmnet export --kind clip), got inputs of ranks '
                         f'{[len(s) for s in shapes]}')
    if kind == 'step' and rank != 4:
        raise ValueError(f'{path.name} is not an exported step: expected inputs frames '
                         f'[N, C, H, W], buffer_0 ... (tsmnet export --kind step), got inputs of '
                         f'ranks {[len(s) for s in shapes]}')


def _size_of(size: int | tuple[int, int] | None, calibration: Any) -> tuple[int, int] | None:
    if size is None:
        return None if calibration is not None else (DEFAULT_SIZE, DEFAULT_SIZE)
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                 for s in pair):
        raise ValueError(f'size must be a positive int or (H, W), got {size!r}')
    return pair  # type: ignore[return-value]


def _model_program(model: nn.Module, runtime: str, precision: str, kind: str,
                   threads: int | None, size: Any, calibration: Any,
                   int8: Int8Options | None) -> _Program:
    ex = as_exportable(model)
    model.eval()
    module = ex.clip_module if kind == 'clip' else ex.step_module()
    step_ex = ex if kind == 'step' else None
    num_outputs = 1 if kind == 'clip' else _step_outputs(ex, module)
    if runtime in ('eager', 'compile'):
        if precision == 'int8':
            if kind == 'step':
                raise ValueError("precision='int8' under runtime='compile' is for clips "
                                 "(tsmnet.quantize); stream an int8 step under "
                                 "'onnxruntime' or 'openvino'")
            quantized = quantize(model, calibration)
            return _Program(lambda inputs: [quantized(inputs[0])], runtime, precision, 'model',
                            ex.scores, num_outputs=1, exportable=step_ex)
        if runtime == 'compile':
            module = torch.compile(module)
        return _Program(_torch_forward(module, precision), runtime, precision, 'model',
                        ex.scores, num_outputs=num_outputs, exportable=step_ex)
    fmt = ('onnx' if runtime == 'onnxruntime' else 'openvino') + (
        '-int8' if precision == 'int8' else '')
    pair = _size_of(size, calibration if precision == 'int8' else None)
    example = None
    if pair is not None:
        clip = smooth_clips(1, max(ex.num_segments, 2), ex.in_channels, pair)
        example = clip[:, :ex.num_segments] if kind == 'clip' else clip[:, 0]
    with tempfile.TemporaryDirectory(prefix='tsmnet-runtime.') as tmp:
        path = Path(tmp) / f'{kind}{".onnx" if runtime == "onnxruntime" else ".xml"}'
        report = export(model, path, kind=kind, format=fmt, example=example,  # type: ignore
                        calibration=calibration if precision == 'int8' else None,
                        int8=int8 if runtime == 'onnxruntime' else None)
        program = _file_program(path, runtime, precision, threads, kind)
    program.source, program.report = 'model', report
    return program


def _step_outputs(ex: Exportable, step: nn.Module) -> int:
    """Outputs of the step before its new buffers."""
    frames = torch.zeros(1, ex.in_channels, 32, 32)
    buffers = ex.zero_buffers(frames)
    with torch.no_grad():
        return len(step(frames, *buffers)) - len(buffers)


def _runner_program(source: Any, runtime: str | None, precision: str | None, kind: str,
                    threads: int | None, size: Any, calibration: Any,
                    int8: Int8Options | None) -> _Program:
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f'runtime must be one of {RUNTIMES}, got {runtime!r}')
    if precision is not None and precision not in ('fp32', 'bf16', 'int8'):
        raise ValueError(f"precision must be one of ('fp32', 'bf16', 'int8') or None, got "
                         f'{precision!r}')
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f'threads must be a positive int or None, got {threads!r}')
    if isinstance(source, (str, os.PathLike)):
        return _file_program(Path(source), runtime, precision, threads, kind)
    if not isinstance(source, nn.Module):
        raise TypeError(f'source must be a tsmnet model (torch.nn.Module) or the path of an '
                        f'exported file (.onnx, .xml), got {type(source).__name__}')
    runtime = runtime or 'eager'
    precision = precision or 'fp32'
    if precision not in PRECISIONS[runtime]:
        raise ValueError(f'precision={precision!r} is not offered by runtime={runtime!r}: '
                         f'expected one of {PRECISIONS[runtime]}')
    if precision == 'int8' and calibration is None:
        raise ValueError(f"precision='int8' needs calibration clips [N, T, C, H, W] (a tensor, "
                         f'a list of them or a folder of videos) to quantize the model under '
                         f'{runtime}')
    return _model_program(source, runtime, precision, kind, threads, size, calibration, int8)


def clip_runner(source: nn.Module | str | os.PathLike, runtime: Runtime | None = None,
                precision: Precision | None = None, *, threads: int | None = None,
                size: int | tuple[int, int] | None = None, calibration: Any = None,
                int8: Int8Options | None = None) -> ClipRunner:
    """A clip model under ``runtime``: ``runner(clips [B, T, C, H, W]) -> [B, num_classes]``.

    Args:
        source: A :class:`~tsmnet.Recognizer` (or a tsmnet backbone: features), or the path
            of a clip exported by :func:`tsmnet.export` (``.onnx``, OpenVINO ``.xml``).
        runtime: One of :data:`RUNTIMES`. Defaults to ``'eager'`` for a model,
            ``'onnxruntime'`` for ``.onnx``, ``'openvino'`` for ``.xml``.
        precision: ``'fp32'``, ``'bf16'`` or ``'int8'`` where the runtime has it
            (:data:`PRECISIONS`). Defaults to ``'fp32'`` for a model, the file's own for a
            file.
        threads: CPU threads of ONNX Runtime or OpenVINO. Defaults to None, the runtime's
            choice. (PyTorch's are the process's: ``torch.set_num_threads``.)
        size: Frame size ``H`` or ``(H, W)`` of the file exported from a model for
            ``'onnxruntime'``/``'openvino'``. Defaults to the calibration clips' for int8, else
            224.
        calibration: For int8 from a model: clips ``[N, T, C, H, W]``, a list of them or a
            folder of videos (as :func:`tsmnet.export` and :func:`tsmnet.quantize` take).
        int8: How ONNX Runtime quantizes (:class:`~tsmnet.deploy.Int8Options`).

    Returns:
        The :class:`ClipRunner`.

    Raises:
        ValueError: An unknown runtime or precision, a precision the runtime or the file does
            not have, int8 without calibration, a file that is not an exported clip.
        TypeError: A source that is neither a model nor a path.
        FileNotFoundError: The file does not exist.
    """
    program = _runner_program(source, runtime, precision, 'clip', threads, size, calibration,
                              int8)
    if isinstance(source, nn.Module):
        segments = as_exportable(source).num_segments
    else:
        assert program.input_shapes is not None
        segments = program.input_shapes[0][1]
        if segments is None:
            raise ValueError(f'{source}: the clip length T (dim 1) must be fixed in the file')
    runner = ClipRunner(program, segments)
    logger.info('%r', runner)
    return runner


def step_runner(source: nn.Module | str | os.PathLike, runtime: Runtime | None = None,
                precision: Precision | None = None, *, threads: int | None = None,
                size: int | tuple[int, int] | None = None, calibration: Any = None,
                int8: Int8Options | None = None) -> StepRunner:
    """A model's online step under ``runtime``: ``runner(frames [N, C, H, W]) -> [N, K]``.

    Args:
        source: A causal model (``shift_mode='causal'``): a :class:`~tsmnet.Recognizer` (the
            frame's scores) or a tsmnet backbone (features); or the path of a step exported by
            :func:`tsmnet.export` with ``kind='step'`` (``.onnx``, OpenVINO ``.xml``).
        runtime, precision, threads, size, calibration, int8: As for :func:`clip_runner`;
            ``'compile'`` has no int8 step.

    Returns:
        The :class:`StepRunner`.

    Raises:
        ValueError: As for :func:`clip_runner`; a model that cannot stream, a file that is not
            an exported step.
        TypeError: A source that is neither a model nor a path.
        FileNotFoundError: The file does not exist.
    """
    program = _runner_program(source, runtime, precision, 'step', threads, size, calibration,
                              int8)
    if program.input_shapes is not None:
        sites = len(program.input_shapes) - 1
    else:
        assert program.exportable is not None
        sites = len(program.exportable.zero_buffers(
            torch.zeros(1, program.exportable.in_channels, 32, 32)))
    runner = StepRunner(program, sites)
    logger.info('%r', runner)
    return runner
