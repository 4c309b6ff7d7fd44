"""Class scores of a live stream, frame by frame: TSM's segment consensus over the last frames.

Offline, a TSM recognizer averages the class logits of its T frames (``AvgConsensus``) and
takes the softmax. :class:`OnlineScores` does the same over a sliding window: at each frame,
the logits of the last ``smooth`` frames averaged, then the softmax. With ``smooth = T``, the
scores at frame ``T - 1`` of a stream equal the offline causal model's on those T frames (the
causal shift never reads ahead), and later frames get the consensus of the last T frames.
``threshold`` names the top class only when its probability reaches it (below, the frame has
no label: nothing happening that the model is sure of).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ['FrameScores', 'OnlineScores']


@dataclass
class FrameScores:
    """One frame's result.

    Args:
        probs: ``[num_classes]`` class probabilities (consensus of the window).
        top: ``(index, label, probability)`` of the best classes, best first.
        label: the top class's name when its probability reaches the threshold, else None.
        window: frames averaged (fewer than ``smooth`` at the start).
    """

    probs: torch.Tensor
    top: list[tuple[int, str, float]] = field(default_factory=list)
    label: str | None = None
    window: int = 1


class OnlineScores:
    """Sliding-window consensus of per-frame class logits.

    Args:
        labels: class names in index order.
        smooth: frames whose logits are averaged (1: each frame alone).
        threshold: the probability the top class needs to be named (0: always named).
        top: classes reported per frame.
    """

    def __init__(self, labels: Sequence[str], smooth: int = 8, threshold: float = 0.0,
                 top: int = 5) -> None:
        if smooth < 1:
            raise ValueError(f'smooth must be >= 1 (frames), got {smooth}')
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f'threshold must be a probability in [0, 1], got {threshold}')
        if top < 1:
            raise ValueError(f'top must be >= 1, got {top}')
        self.labels, self.smooth, self.threshold, self.top = list(labels), smooth, threshold, top
        self._logits: deque[torch.Tensor] = deque(maxlen=smooth)

    def reset(self) -> None:
        """Forget the window (a new video starts)."""
        self._logits.clear()

    def update(self, logits: torch.Tensor) -> FrameScores:
        """Add one frame's logits and score the window.

        Args:
            logits: ``[num_classes]`` (or ``[1, num_classes]``) class logits of the frame.

        Returns:
            The frame's :class:`FrameScores`.
        """
        logits = logits.detach().float().reshape(-1).cpu()
        if logits.numel() != len(self.labels):
            raise ValueError(f'logits must have one value per label ({len(self.labels)}), got '
                             f'{logits.numel()}')
        self._logits.append(logits)
        probs = torch.stack(tuple(self._logits)).mean(0).softmax(-1)
        values, indices = probs.topk(min(self.top, probs.numel()))
        top = [(int(i), self.labels[i], float(v)) for v, i in zip(values.tolist(),
                                                                  indices.tolist())]
        label = top[0][1] if top[0][2] >= self.threshold else None
        return FrameScores(probs, top, label, len(self._logits))
