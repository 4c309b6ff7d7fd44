"""What gets exported: a model seen as a whole-clip function or as an online step.

``clip``: ``[N, T, C, H, W] -> scores [N, K]`` (a recogniser) or ``features [N * T, C', h,
w]`` (a backbone). ``step``: ``(frames [N, C, H, W], *buffers) -> (scores [N, K] or features
[N, C', h, w], *new_buffers)``, one frame of each of ``N`` streams with the shift buffers as
explicit inputs and outputs (:class:`tsmnet.stream.TSMStreamStep`). A recogniser's step gives
the frame's class scores; the clip score of a stream is the mean of its frame scores so far
(TSM's segment consensus, online).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._torch_compat import ConvBase
from ..models.recognizer import Recognizer
from ..stream import TSMStream, TSMStreamStep, _stages_of

__all__ = ['Exportable', 'as_exportable']


class BackboneClip(nn.Module):
    """A backbone on whole clips: ``[N, T, C, H, W] -> features [N * T, C', h, w]``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, clips: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.backbone(clips.flatten(0, 1))


class RecognizerStep(nn.Module):
    """The step of a :class:`~tsmnet.Recognizer`: the backbone's step, then the head on the
    frame (average pool, ``fc_cls``; dropout is off in eval): ``(frames, *buffers) ->
    (scores [N, K], *new)``. The clip's scores are the mean of its frame scores."""

    def __init__(self, model: Recognizer) -> None:
        super().__init__()
        self.step = TSMStreamStep(model.backbone)
        self.head = model.cls_head

    def forward(self, frames: torch.Tensor, *buffers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features, *new = self.step(frames, *buffers)
        if self.head.avg_pool is not None:
            features = self.head.avg_pool(features)
        return (self.head.fc_cls(torch.flatten(features, 1)), *new)


@dataclass
class Exportable:
    """A model as the two functions export knows.

    Attributes:
        model: The user's model (eval mode).
        backbone: The tsmnet backbone inside it (what streams).
        clip_module: ``[N, T, C, H, W] -> outputs``.
        scores: True when the outputs are class scores ``[N, K]`` (else backbone features).
        num_segments: ``T`` of a clip.
        in_channels: ``C`` of a frame.
    """

    model: nn.Module
    backbone: nn.Module
    clip_module: nn.Module
    scores: bool
    num_segments: int
    in_channels: int

    def step_module(self) -> nn.Module:
        """The online step ``(frames, *buffers) -> (*outputs, *new_buffers)``.

        Raises:
            ValueError: The model cannot stream (a bidirectional shift, temporal pooling,
                non-local blocks): the message says which module and why.
        """
        try:
            TSMStream(self.backbone)
        except (TypeError, ValueError) as err:
            raise ValueError(f"kind='step' needs a model that streams frame by frame: {err}"
                             ) from err
        if isinstance(self.model, Recognizer):
            return RecognizerStep(self.model).eval()
        return TSMStreamStep(self.backbone).eval()

    def zero_buffers(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Zero buffers of the step for ``frames`` ``[N, C, H, W]`` (one per shift site)."""
        stream = TSMStream(self.backbone)
        with torch.no_grad():
            stream.step(frames)
        return [torch.zeros_like(b) for b in stream.buffers]


def as_exportable(model: nn.Module) -> Exportable:
    """Recognise ``model``: a tsmnet backbone (ResNet, ResNetTSM, MobileNetV2, MobileNetV2TSM)
    or a :class:`~tsmnet.Recognizer` on one.

    Raises:
        TypeError: Another kind of module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f'model must be a torch.nn.Module, got {type(model).__name__}')
    segments = None
    if isinstance(model, Recognizer):  # its T (the head's) may be a multiple of the backbone's
        backbone, clip, scores, segments = model.backbone, model, True, model.num_segments
    elif _stages_of(model) is not None:
        backbone, clip, scores = model, BackboneClip(model), False
    else:
        raise TypeError(f'model must be a tsmnet backbone (ResNetTSM, MobileNetV2TSM, ResNet, '
                        f'MobileNetV2) or a recogniser on one, got {type(model).__name__}')
    conv = next(m for m in backbone.modules() if isinstance(m, ConvBase))
    return Exportable(model=model, backbone=backbone, clip_module=clip.eval(), scores=scores,
                      num_segments=segments or getattr(backbone, 'num_segments', 1),
                      in_channels=conv.in_channels)
