"""A recognizer run online: one frame of each of any set of streams per step, every stream
with its own shift buffers.

:class:`tsmnet.TSMStream` keeps one buffer ``[N, ...]`` per shift site for a fixed ``N``; a
server's streams come and go and send frames at their own pace, so each step takes whichever
streams have a frame ready. The step here is :class:`tsmnet.stream.TSMStreamStep` (the stream's
step as a pure function of the frames and the buffers): the buffers of the streams in a batch
are stacked, stepped, and split back, so a stream's state is its own ``[1, ...]`` tensors.

Scores follow :class:`tsmnet.TSMHead`: each frame's features are pooled and classified, and a
stream's scores are the softmax of the mean logits of its last ``T`` frames (the head's
segment consensus over a sliding window of the model's ``num_segments``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..layers import TemporalShift
from ..models.recognizer import Recognizer
from ..stream import TSMStream

LOGGER = logging.getLogger(__name__)

Buffers = tuple[torch.Tensor, ...]
# a recognizer's step as a function of its inputs: [frames, *buffers] -> [logits, *new]
StepFunction = Callable[[Sequence[torch.Tensor]], Sequence[torch.Tensor]]


def causal_backbone(backbone: nn.Module) -> nn.Module:
    """``backbone`` itself when every shift is causal; otherwise a copy whose shifts are.

    A bidirectional model streamed with a causal shift is TSM's online approximation (its
    weights were trained seeing the next frame), so a warning is logged.
    """
    shifts = [m for m in backbone.modules() if isinstance(m, TemporalShift)]
    if all(m.shift_mode == 'causal' for m in shifts):
        return backbone
    LOGGER.warning('the model shifts both ways (shift_mode=%r); the stream runs a copy with a '
                   'causal shift, which differs from the model it was trained as: train with '
                   "shift_mode='causal' for exact online scores", shifts[0].shift_mode)
    twin = copy.deepcopy(backbone)
    for module in twin.modules():
        if isinstance(module, TemporalShift):
            module.shift_mode = 'causal'
    return twin


class OnlineModel:
    """The frame step of a recognizer, batched over any streams.

    Args:
        model: A recognizer in eval mode (its batch norms may be folded, as
            :class:`tsmnet.predictor.Predictor` leaves them).
        size: The side of the square frames (``[3, size, size]``).
        channels_last: Feed frames channels-last (what a CPU model laid out that way wants).
        step: The recognizer's step under another runtime (the model's step exported to ONNX
            Runtime, :func:`tsmnet.predictor.exported_step`): ``[frames, *buffers] ->
            [logits, *new_buffers]``, any number of frames. None: the model's own, eager.

    Raises:
        TypeError, ValueError: The backbone cannot stream (see :class:`tsmnet.TSMStream`), or
            the head does not average-pool its features.
    """

    def __init__(self, model: Recognizer, size: int, channels_last: bool = False,
                 step: StepFunction | None = None) -> None:
        head = model.cls_head
        if head.avg_pool is None:
            raise ValueError("the head must pool its features (spatial_type='avg') to "
                             'classify frame by frame')
        self.backbone = causal_backbone(model.backbone)
        stream = TSMStream(self.backbone)  # refuses what cannot stream, naming why
        self.step_module = stream.step_module()
        self.fc = head.fc_cls
        self.exported = step
        self.window = model.num_segments
        self.size = size
        self.channels_last = channels_last
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        probe = torch.zeros(1, 3, size, size, device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            self.zeros: Buffers = tuple(stream.zero_buffers(probe))  # never written
        self.state_bytes = sum(b.numel() * b.element_size() for b in self.zeros)

    @property
    def num_sites(self) -> int:
        return len(self.zeros)

    @torch.inference_mode()
    def step(self, frames: torch.Tensor, states: Sequence[Buffers | None]
             ) -> tuple[torch.Tensor, list[Buffers]]:
        """One frame of each of ``B`` streams.

        Args:
            frames: ``[B, 3, size, size]``, normalised.
            states: Each stream's buffers from its previous step, or None before its first
                frame (or after a reset).

        Returns:
            The frames' logits ``[B, num_classes]`` (float32, on the CPU) and each stream's new
            buffers (compact copies, so no stream holds on to the batch's activations).
        """
        if frames.dim() != 4 or frames.shape[0] != len(states):
            raise ValueError(f'frames must be [B, 3, H, W] with B = len(states) = {len(states)}, '
                             f'got {list(frames.shape)}')
        frames = frames.to(self.device, self.dtype)
        if self.exported is not None:  # a recognizer's step: the logits come out
            buffers = self._stacked(states)
            out = self.exported([frames, *buffers])
            logits, new = out[0].float().cpu(), out[1:]
            return logits, [tuple(b[j:j + 1].clone() for b in new) for j in range(len(states))]
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        buffers = self._stacked(states)
        out = self.step_module(frames, *buffers)
        features, new = out[0], out[1:]
        logits = self.fc(features.mean(dim=(2, 3))).float().cpu()
        return logits, [tuple(b[j:j + 1].clone() for b in new) for j in range(len(states))]

    def _stacked(self, states: Sequence[Buffers | None]) -> Buffers:
        """The streams' buffers, one ``[B, ...]`` tensor per shift site."""
        if len(states) == 1:
            return states[0] or self.zeros
        return tuple(torch.cat([(s or self.zeros)[i] for s in states])
                     for i in range(self.num_sites))

    @staticmethod
    def scores(window: Sequence[torch.Tensor]) -> torch.Tensor:
        """Class probabilities of a stream: the softmax of the mean of its last frames' logits
        (each ``[num_classes]``)."""
        return torch.stack(tuple(window)).mean(0).softmax(-1)
