"""``tsmnet.quantize``: PyTorch-native x86 int8 (PT2E with torchao's ``X86InductorQuantizer``,
then ``torch.compile``), calibrated with the same clips as ``tsmnet export``'s int8.

The flow is torchao's documented one: ``torch.export`` of the clip model (``N`` dynamic),
``prepare_pt2e`` with the x86 quantizer (per-channel int8 weights, uint8 activations, as
oneDNN wants them), calibration, ``convert_pt2e``, then ``torch.compile`` with inductor's
freezing, which folds the quantized weights and lowers each dequantize-conv-quantize pattern
to oneDNN's int8 conv (VNNI/AMX where the CPU has them). Every conv is seen because tsmnet's
convs are plain ``nn.Conv2d`` (:mod:`tsmnet.models.layer_cfgs`). The quantized module is
checked against eager fp32 on a calibration clip, as every export is (:mod:`.verify`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._torch_compat import inductor_freezing
from .calibration import calibration_clips, normalise_unit_clips
from .modules import as_exportable
from .report import BOUNDS
from .verify import Comparison, compare, eager_runner

__all__ = ['BACKENDS', 'QuantizedModel', 'quantize']

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ('x86',)
MAX_CLIPS = 1024


def require() -> None:
    """Raise a clear error where torchao is not installed."""
    if importlib.util.find_spec('torchao') is None:
        raise ModuleNotFoundError("tsmnet.quantize(backend='x86') needs torchao: pip install "
                                  "'tsmnet[x86]' (torchao 0.18, for torch 2.13)")


@dataclass
class QuantizedModel:
    """The int8 model and how it compares with eager fp32.

    Attributes:
        module: The compiled int8 module: ``[N, T, C, H, W] -> scores [N, K]`` (a recognizer)
            or backbone features ``[N * T, C', h, w]``, at the calibration's frame size. Call
            the ``QuantizedModel`` itself: it compiles with inductor's freezing on.
        comparison: Its first output against eager fp32 on the check clips.
        quantized_convs: Convs whose weight is int8.
        convs: Convs in the graph.
        compiled: ``module`` is compiled (else the converted graph, reference int8 numbers).
    """

    module: Any
    comparison: Comparison
    quantized_convs: int
    convs: int
    compiled: bool = True

    @property
    def ok(self) -> bool:
        """The int8 bound of every export: cosine similarity with fp32 >= 0.95."""
        return self.comparison.cosine >= BOUNDS['onnx-int8'][1]

    def __call__(self, clips: torch.Tensor) -> Any:
        with torch.no_grad(), _freezing(self.compiled):
            return self.module(clips)


def _freezing(on: bool) -> Any:
    """Inductor's freezing for the compiles this call may start (the first, and any
    recompile): it folds the int8 weights and lowers the quantized convs to oneDNN's. Set as
    inductor's config around the call: ``torch.compile(options={'freezing': True})`` fails
    on torch 2.13 (``onednn.qconv_prepack`` run on fake tensors)."""
    return inductor_freezing() if on else contextlib.nullcontext()


def _quantizer() -> Any:
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    return X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())


def _count_convs(graph: torch.fx.GraphModule) -> tuple[int, int]:
    """(convs with a dequantized weight, all convs) in a converted graph."""
    convs = [n for n in graph.graph.nodes if n.target is torch.ops.aten.conv2d.default]
    quantized = sum('dequantize' in str(getattr(n.args[1], 'target', '')) for n in convs)
    return quantized, len(convs)


def quantize(model: nn.Module, calibration: Any, *, backend: str = 'x86',
             compile: bool = True) -> QuantizedModel:
    """Quantize ``model`` to int8 for x86 CPUs and compile it.

    Args:
        model: A tsmnet backbone or :class:`~tsmnet.Recognizer` (run in eval mode; its mode
            is restored).
        calibration: Clips in the model's input space: a tensor ``[N, T, C, H, W]``, an
            iterable of them, or a folder of videos (read as ``tsmnet export`` reads it). The
            frame size of the first clip is the size the module is checked at.
        backend: ``'x86'`` (PT2E with torchao's ``X86InductorQuantizer``).
        compile: Compile the converted module with inductor (freezing on). Defaults to True;
            False returns the converted graph module (reference int8 numbers, slow).

    Returns:
        The :class:`QuantizedModel` (``.ok`` tells whether it is within the int8 bound).

    Raises:
        ValueError: An unknown ``backend``, or calibration data that is empty or of the wrong
            shape (the message says what was expected).
        ModuleNotFoundError: torchao is not installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    require()
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    ex = as_exportable(model)
    if isinstance(calibration, Iterable) and not isinstance(calibration, (str, Path,
                                                                          torch.Tensor)):
        calibration = list(calibration)
    first = calibration if isinstance(calibration, torch.Tensor) else (
        calibration[0] if isinstance(calibration, list) and calibration else None)
    size = tuple(first.shape[-2:]) if isinstance(first, torch.Tensor) and first.dim() == 5 \
        else (224, 224)
    clips = calibration_clips(calibration, (ex.num_segments, ex.in_channels, *size),
                              needs_t=True, unit_to_input=normalise_unit_clips)
    check = clips[0]
    example = check if check.shape[0] >= 2 else torch.cat([check, check])  # N = 1 is pinned
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            dims = ({0: torch.export.Dim('clips', min=1, max=MAX_CLIPS)},)
            graph = torch.export.export(ex.clip_module, (example,),
                                        dynamic_shapes=dims).module()
            prepared = prepare_pt2e(graph, _quantizer())
            for clip in clips:
                prepared(clip)
            converted = convert_pt2e(prepared)
            quantized, convs = _count_convs(converted)
            module = torch.compile(converted) if compile else converted
            result = QuantizedModel(module=module, comparison=None,  # type: ignore[arg-type]
                                    quantized_convs=quantized, convs=convs, compiled=compile)
            comparison = compare(eager_runner(ex.clip_module)([check])[:1], [result(check)])
            result.comparison = comparison
    finally:
        model.train(training)
    logger.info('x86 int8: %d of %d convs int8; vs eager fp32 on %d clips: cosine %.6f, top-1 '
                'agreement %.1f%%', quantized, convs, comparison.rows, comparison.cosine,
                100 * comparison.top1_agreement)
    if not result.ok:
        logger.warning('x86 int8 disagrees with eager fp32 beyond the int8 bound (cosine %.4f)',
                       comparison.cosine)
    return result
