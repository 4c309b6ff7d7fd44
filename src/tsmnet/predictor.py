"""A model ready for inference, built one way for every command: ``tsmnet predict``,
``tsmnet stream`` and ``tsmnet serve`` (and any Python caller).

:func:`load_model` is the one loader: a zoo name with its published weights, a checkpoint or
folder that describes its model (``tsmnet finetune``, :func:`tsmnet.save`), or a checkpoint
that does not (a release, a bare state dict) loaded into a zoo name's architecture with the
checkpoint's own head. ``causal=True`` gives the model an online stream runs: a bidirectionally
trained model is rebuilt with a causal shift, which is another model (TSM's online
approximation), so a warning says so. :class:`Predictor` scores video files as MMAction2's test
step does; :func:`build_predictor` is both together.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .deploy.api import export
from .deploy.openvino import openvino_runner
from .deploy.runtime import clip_runner
from .deploy.verify import onnx_runner
from .fuse import fuse_conv_bn
from .layers import TemporalShift
from .models.factory import create_model
from .models.frames import channels_last_clips
from .models.recognizer import Recognizer
from .models.saving import load
from .video import TestProtocol, VideoTransform, read_sampled, single_view_protocol
from .weights.download import download_weights
from .weights.saved import read_saved
from .weights.zoo import weights as zoo_entry

__all__ = ['DEFAULT_BATCH', 'Prediction', 'Predictor', 'build_predictor', 'class_labels',
           'exported_step', 'load_model', 'parse_views', 'read_labels', 'stream_protocol']

LOGGER = logging.getLogger(__name__)
# Views per forward pass. Swept on the shared 2-core Xeon, channels-last (2026-12-02, load
# 2-7, interleaved): 1 and 2 views per pass were 1.42x and 1.20x slower than 4 on 16 views;
# 8 and 16 were faster there (0.83x, 0.79x) but not on all 80 views (8: 1.01x; 16, 20, 40:
# 1.2-1.4x, one repeat), so 4 stays until a quiet machine settles it. Contiguous (not
# channels-last) was 1.35x slower at 4.
DEFAULT_BATCH = 4


def _trained_shift_mode(architecture: Any) -> str | None:
    """The shift a description was trained with (None: it does not shift)."""
    backbone = dict(architecture['backbone'])
    if not backbone.get('is_shift', True):
        return None
    return backbone.get('shift_mode', 'bidirectional')


def load_model(name: str | None = None, weights: str | None = None, *, causal: bool = False,
               **kwargs: Any) -> Recognizer:
    """The recognizer of a zoo name and/or a checkpoint, in eval mode.

    Args:
        name: A zoo name (:func:`tsmnet.list_models`). Needed unless ``weights`` describes its
            model. Defaults to None.
        weights: A checkpoint file, URL or saved-model folder. One that describes its model
            (:func:`tsmnet.save`, ``tsmnet finetune``) is rebuilt as saved (``name`` is then
            not needed, and not used); any other is loaded into ``name``'s architecture with
            the checkpoint's own head (its classes, not the entry's). None: ``name``'s
            published weights (downloaded once). Defaults to None.
        causal: Build the model with ``shift_mode='causal'`` (what an online stream runs).
            A model trained with a bidirectional shift is then another model: a warning is
            logged. Defaults to False.
        **kwargs: Architecture overrides, as :func:`tsmnet.create_model` takes them.

    Returns:
        The :class:`~tsmnet.Recognizer` with its ``class_names`` and ``protocol``.

    Raises:
        FileNotFoundError: ``weights`` is a path and nothing is there.
        ValueError: No ``name`` and ``weights`` do not describe their model; an unknown name
            (:class:`tsmnet.weights.zoo.UnknownModelError`).
        tsmnet.weights.checkpoint.CheckpointMismatchError: The checkpoint does not fit.
    """
    if weights is not None and '://' in weights:
        weights = str(download_weights(weights))  # read like a local file from the cache
    if weights is not None and not Path(weights).exists():
        raise FileNotFoundError(f'weights: no such file or folder: {weights}')
    info = read_saved(weights)[1] if weights is not None else None
    if info is not None and info.architecture is not None:  # it describes itself
        trained = _trained_shift_mode(info.architecture)
        overrides = {'shift_mode': 'causal'} if causal and trained is not None else {}
        model = load(weights, **overrides, **kwargs)
    else:
        if name is None:
            raise ValueError(f'weights {weights} do not describe their model (a release or a '
                             'bare state dict): give its zoo name too')
        trained = _trained_shift_mode(zoo_entry(name).architecture)  # unknown names fail here
        overrides = {'shift_mode': 'causal'} if causal and trained is not None else {}
        if info is not None:  # its own head: the checkpoint's classes, not the entry's
            overrides['num_classes'] = info.num_classes
        model = create_model(name, pretrained=True if weights is None else weights,
                             **overrides, **kwargs).eval()
    if causal and trained not in (None, 'causal'):
        LOGGER.warning('%s was trained with shift_mode=%r; streamed with a causal shift it is '
                       'another model (TSM\'s online approximation: its scores differ from '
                       'the offline ones). Fine-tune with --shift-mode causal for a model that '
                       'streams exactly.', weights or name, trained)
    return model


def stream_protocol(protocol: TestProtocol | None, size: int | None = None) -> TestProtocol:
    """The single center view a stream feeds each frame: ``protocol``'s (its resize, crop
    size, mean and std), or at another crop ``size`` with its mean and std."""
    base = protocol or TestProtocol()
    if size is None or size == base.crop_size:
        return base
    return single_view_protocol(size, base.mean, base.std)


def parse_views(text: str | None) -> tuple[int | None, int | None]:
    """``'CLIPS,CROPS'`` as two positive ints (None, None when not given).

    Raises:
        ValueError: Not two integers, CLIPS below 1 or CROPS not 1, 3 or 10.
    """
    if text is None:
        return None, None
    try:
        clips, crops = (int(p) for p in text.split(','))
    except ValueError:
        raise ValueError(f'views must be CLIPS,CROPS (two integers), got {text!r}') from None
    if clips < 1 or crops not in (1, 3, 10):
        raise ValueError(f'views: CLIPS must be >= 1 and CROPS 1, 3 or 10, got {text!r}')
    return clips, crops


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file, one a line (blank lines ignored).

    Raises:
        ValueError: The file cannot be read.
    """
    try:
        lines = Path(path).read_text(encoding='utf-8').splitlines()
    except OSError as err:
        raise ValueError(f'labels: cannot read {path}: {err.strerror or err}') from None
    return [line.strip() for line in lines if line.strip()]


def class_labels(model: Recognizer, weights: str | None = None,
                 labels: str | Path | None = None) -> list[str]:
    """The class names of ``model``: the ``labels`` file, else ``labels.txt`` beside a
    ``weights`` file, else the model's own, else ``class N``.

    Raises:
        ValueError: The names do not number the model's classes.
    """
    if labels is None and weights is not None and '://' not in weights and \
            Path(weights).is_file() and (Path(weights).parent / 'labels.txt').is_file():
        labels = Path(weights).parent / 'labels.txt'
    names = read_labels(labels) if labels is not None else model.class_names
    if names is not None and len(names) != model.num_classes:
        raise ValueError(f'labels: {len(names)} class names for a model of '
                         f'{model.num_classes} classes')
    return list(names) if names else [f'class {i}' for i in range(model.num_classes)]


@dataclass
class Prediction:
    """One video's result: the top classes and the time of each stage (seconds)."""

    video: str
    top: list[tuple[int, str, float]]
    views: int
    seconds: dict[str, float] = field(default_factory=dict)


class Predictor:
    """A recognizer ready for inference and its protocol: video file -> averaged scores.

    The model runs in eval mode with its batch norms folded into the convs and channels-last
    activations (the same function, faster on CPUs), ``batch`` views per forward pass. The
    model is changed in place: it is one to run, not to train or save.

    Args:
        model: The recognizer (its ``cls_head.average_clips`` averages the views).
        protocol: How videos are read.
        labels: Class names in index order.
        device: Where the model runs.
        batch: Views per forward pass.
        runtime: What runs the views (:data:`tsmnet.deploy.runtime.RUNTIMES`): ``'eager'``,
            ``'compile'``, or the model exported to ``'onnxruntime'`` / ``'openvino'`` at the
            protocol's crop size (checked against eager on export).
        precision: ``'fp32'``, ``'bf16'`` or ``'int8'`` where the runtime has it.
        calibration: int8's calibration clips or folder of videos.
        threads: ONNX Runtime's or OpenVINO's CPU threads.

    Raises:
        ValueError: ``batch`` below 1; a runtime or precision it does not have, int8 without
            calibration.
    """

    def __init__(self, model: Recognizer, protocol: TestProtocol, labels: Sequence[str],
                 device: torch.device | str = 'cpu', batch: int = DEFAULT_BATCH,
                 runtime: str = 'eager', precision: str | None = None,
                 calibration: Any = None, threads: int | None = None) -> None:
        if batch < 1:
            raise ValueError(f'batch must be >= 1, got {batch}')
        self.device = torch.device(device)
        model = fuse_conv_bn(model.eval(), inplace=True).to(self.device)
        self.channels_last = self.device.type == 'cpu'
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last \
            else model
        self.protocol, self.labels, self.batch = protocol, list(labels), batch
        self.transform = VideoTransform(protocol)
        # the runner of the views: eager is the model itself (what MMAction2's test step runs)
        self.run = clip_runner(self.model, runtime, precision, threads=threads,
                               size=protocol.crop_size, calibration=calibration)
        self.runtime, self.precision = self.run.runtime, self.run.precision

    @torch.inference_mode()
    def scores(self, views: torch.Tensor) -> torch.Tensor:
        """Class scores of one video's views ``[V, T, 3, H, W]``, averaged: ``[num_classes]``."""
        logits = []
        for start in range(0, len(views), self.batch):
            chunk = views[start:start + self.batch].to(self.device)
            if self.channels_last:
                chunk = channels_last_clips(chunk)
            logits.append(self.run(chunk).float().cpu())
        logits = torch.cat(logits)
        if self.model.cls_head.average_clips is None:  # MMAction2 would not average: the mean
            return logits.mean(0)
        return self.model.cls_head.average_clip(logits, len(views)).reshape(-1)

    def __call__(self, path: str | Path, top: int = 5) -> Prediction:
        """Top-``top`` classes of one video, and the seconds of its decode, transforms and
        model stages (what ``benchmarks/bench_predict.py`` times)."""
        tic = time.perf_counter()
        frames = read_sampled(path, self.protocol)
        decoded = time.perf_counter()
        views = self.transform.from_sampled(frames)
        transformed = time.perf_counter()
        scores = self.scores(views)
        done = time.perf_counter()
        values, indices = scores.topk(min(top, scores.numel()))
        return Prediction(str(path), [(int(i), self.labels[i], float(v))
                                      for v, i in zip(values.tolist(), indices.tolist())],
                          len(views), {'decode': decoded - tic, 'transforms': transformed - decoded,
                                       'model': done - transformed})


def build_predictor(name: str | None = None, weights: str | None = None,
                    labels: str | Path | None = None, views: str | None = None,
                    device: str = 'cpu', batch: int = DEFAULT_BATCH, *, causal: bool = False,
                    **runtime: Any) -> Predictor:
    """The :class:`Predictor` of :func:`load_model` (``name``, ``weights``, ``causal``), with
    :func:`class_labels` and the model's test protocol (``views``: ``'CLIPS,CROPS'`` instead
    of its own). ``runtime``: :class:`Predictor`'s ``runtime``, ``precision``,
    ``calibration`` and ``threads``."""
    model = load_model(name, weights, causal=causal)
    protocol = (model.protocol or TestProtocol()).with_views(*parse_views(views))
    return Predictor(model, protocol, class_labels(model, weights, labels), device=device,
                     batch=batch, **runtime)


# what runs a streamed step: runtime -> {precision: (export format, OpenVINO hint)}
STEP_FORMATS: dict[str, dict[str, tuple[str, str | None]]] = {
    'onnxruntime': {'fp32': ('onnx', None), 'int8': ('onnx-int8', None)},
    'openvino': {'fp32': ('openvino', 'f32'), 'bf16': ('openvino', 'bf16'),
                 'int8': ('openvino-int8', 'f32')}}


def exported_step(model: Recognizer, size: int, precision: str | None = None,
                  calibration: Any = None, threads: int | None = None,
                  runtime: str = 'onnxruntime'
                  ) -> Callable[[Sequence[torch.Tensor]], list[torch.Tensor]]:
    """A recognizer's online step exported and run by ONNX Runtime or OpenVINO, as a
    function of its inputs: ``[frames [B, 3, size, size], *buffers] -> [logits [B, K],
    *new_buffers]``, any ``B`` (what a server steps its streams with, each stream holding its
    own buffers).

    The model is exported with a causal shift (its shifts get their mode back after) and
    checked against eager by :func:`tsmnet.export`; the file lives in a temporary folder only
    until the runtime has read it.

    Args:
        model: The recognizer (eval mode; its batch norms may be folded).
        size: The frames' side.
        precision: ``'fp32'`` (None), ``'int8'`` (``calibration`` needed) or, on OpenVINO,
            ``'bf16'`` (its inference precision hint; the file is fp32).
        calibration: int8's calibration clips or folder of videos (as :func:`tsmnet.export`
            takes them).
        threads: The runtime's CPU threads.
        runtime: ``'onnxruntime'`` (default) or ``'openvino'``.

    Raises:
        ValueError: Another runtime or precision, int8 without calibration, a model that
            cannot stream, or an exported file that disagrees with eager beyond its format's
            bound.
    """
    if runtime not in STEP_FORMATS:
        raise ValueError(f'runtime of an exported step must be one of {list(STEP_FORMATS)}, '
                         f'got {runtime!r}')
    precision = precision or 'fp32'
    if precision not in STEP_FORMATS[runtime]:
        raise ValueError(f'precision of an {runtime} step must be one of '
                         f'{list(STEP_FORMATS[runtime])}, got {precision!r}')
    if precision == 'int8' and calibration is None:
        raise ValueError("precision='int8' needs calibration clips or a folder of videos")
    fmt, hint = STEP_FORMATS[runtime][precision]
    shifts = [m for m in model.modules() if isinstance(m, TemporalShift)]
    modes = [m.shift_mode for m in shifts]
    try:  # exported causal; the model itself is given back as it was
        for module in shifts:
            module.shift_mode = 'causal'
        with tempfile.TemporaryDirectory(prefix='tsmnet-step.') as tmp:
            path = f'{tmp}/step.{"xml" if runtime == "openvino" else "onnx"}'
            example = None if precision == 'int8' else torch.randn(1, 3, size, size)
            report = export(model.eval(), path, kind='step', format=fmt, example=example,
                            calibration=calibration)
            if not report.ok:
                raise ValueError(f'the exported step disagrees with eager beyond its bound '
                                 f'({report.bound})')
            if runtime == 'openvino':
                return openvino_runner(path, hint or 'f32', threads)
            return onnx_runner(path, threads)
    finally:
        for module, mode in zip(shifts, modes):
            module.shift_mode = mode
