"""TSMHead: the classifier of a TSM recognizer, and how views of one video are averaged.

Arguments, defaults, module names (``fc_cls``) and numbers are MMAction2 1.2.0's ``TSMHead``
(``mmaction/models/heads/tsm_head.py``) and ``BaseHead.average_clip``; where those are wrong
this head differs, as listed in ``docs/defects.md`` ("TSMHead").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['AVERAGE_CLIPS', 'AvgConsensus', 'CrossEntropyLoss', 'TSMHead', 'average_clip']

AverageClips = Literal['prob', 'score'] | None
#: Values of ``average_clips``: softmax then mean (``'prob'``), mean of the raw scores
#: (``'score'``), or no averaging (None: each view's scores).
AVERAGE_CLIPS: tuple[str | None, ...] = ('prob', 'score', None)


def check_average_clips(average_clips: Any) -> None:
    """Raises ValueError unless ``average_clips`` is ``'prob'``, ``'score'`` or None."""
    if average_clips not in AVERAGE_CLIPS:
        raise ValueError(f"average_clips must be one of 'prob', 'score' or None, "
                         f'got {average_clips!r}')


def average_clip(scores: torch.Tensor, num_views: int,
                 average_clips: AverageClips = 'prob') -> torch.Tensor:
    """Average the class scores of the views (clips x crops) of each video.

    The numbers of MMAction2's ``BaseHead.average_clip``.

    Args:
        scores: ``[N * V, K]`` scores, the ``V`` views of a video adjacent.
        num_views: ``V``.
        average_clips: ``'prob'`` (softmax, then the mean over views), ``'score'`` (the mean
            of the raw scores) or None (no averaging). Defaults to ``'prob'``.

    Returns:
        ``[N, K]``; ``[N, V, K]`` with ``average_clips=None``.

    Raises:
        ValueError: ``average_clips`` is not one of those, ``num_views`` is not a positive
            int, or ``scores`` is not ``[N * V, K]``.
    """
    check_average_clips(average_clips)
    if not isinstance(num_views, int) or isinstance(num_views, bool) or num_views < 1:
        raise ValueError(f'num_views must be a positive int, got {num_views!r}')
    if scores.dim() != 2 or scores.shape[0] % num_views:
        raise ValueError(f'scores must be [N * num_views, K] with num_views={num_views}, '
                         f'got {list(scores.shape)}')
    views = scores.view(scores.shape[0] // num_views, num_views, scores.shape[1])
    if average_clips is None:
        return views
    if average_clips == 'prob':
        views = F.softmax(views, dim=2)
    return views.mean(dim=1)


class AvgConsensus(nn.Module):
    """The mean over the segments of each clip: ``[N, T, K]`` -> ``[N, 1, K]``.

    Args:
        dim: The segment dimension. Only 1 is accepted (the head squeezes dim 1 after it).
    """

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        if dim != 1:
            raise ValueError(f'consensus dim must be 1 (the segments of [N, T, K]), got {dim!r}')
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dim, keepdim=True)


class CrossEntropyLoss(nn.Module):
    """MMAction2's ``CrossEntropyLoss`` numbers: ``loss_weight * cross_entropy``.

    Hard labels ``[N]`` (class indices) or soft labels ``[N, K]`` (probabilities: the mean of
    ``-sum(label * log_softmax(score))``). Holds no state-dict entries, as MMAction2's.

    Args:
        loss_weight: Factor of the loss. Defaults to 1.0.
        class_weight: Per-class weights (hard labels: weighted mean, as ``F.cross_entropy``;
            soft labels: each class's term weighted). Defaults to None.
    """

    def __init__(self, loss_weight: float = 1.0,
                 class_weight: Sequence[float] | None = None) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.class_weight = None if class_weight is None else tuple(float(w) for w in
                                                                     class_weight)

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weight is None else \
            scores.new_tensor(self.class_weight)
        if scores.shape == labels.shape:  # soft labels
            log_prob = F.log_softmax(scores, dim=1)
            if weight is not None:
                log_prob = log_prob * weight
            loss = -(labels * log_prob).sum(dim=1).mean()
        else:
            loss = F.cross_entropy(scores, labels, weight=weight)
        return self.loss_weight * loss


def _build_loss(loss_cls: Mapping[str, Any] | nn.Module | None) -> nn.Module:
    if loss_cls is None:
        return CrossEntropyLoss()
    if isinstance(loss_cls, nn.Module):
        return loss_cls
    if isinstance(loss_cls, Mapping):
        cfg = dict(loss_cls)
        kind = cfg.pop('type', 'CrossEntropyLoss')
        if kind != 'CrossEntropyLoss':
            raise ValueError(f"loss_cls type must be 'CrossEntropyLoss' (or pass an nn.Module), "
                             f'got {kind!r}')
        unknown = set(cfg) - {'loss_weight', 'class_weight'}
        if unknown:
            raise ValueError(f'loss_cls: CrossEntropyLoss takes loss_weight and class_weight, '
                             f'got {sorted(unknown)}')
        return CrossEntropyLoss(**cfg)
    raise TypeError(f'loss_cls must be a dict, an nn.Module or None, got '
                    f'{type(loss_cls).__name__}')


def _build_consensus(consensus: Mapping[str, Any] | None) -> AvgConsensus:
    if consensus is None:
        return AvgConsensus()
    if not isinstance(consensus, Mapping):
        raise TypeError(f"consensus must be a dict such as dict(type='AvgConsensus', dim=1) or "
                        f'None, got {type(consensus).__name__}')
    cfg = dict(consensus)
    kind = cfg.pop('type', None)
    if kind != 'AvgConsensus':
        # MMAction2 sets the consensus to None here and fails in forward ('NoneType' object
        # is not callable)
        raise ValueError(f"consensus type must be 'AvgConsensus' (the only one TSMHead "
                         f'implements), got {kind!r}')
    unknown = set(cfg) - {'dim'}
    if unknown:
        raise ValueError(f'consensus: AvgConsensus takes dim only, got {sorted(unknown)}')
    return AvgConsensus(**cfg)


class TSMHead(nn.Module):
    """The TSM classifier: pool each frame's features, classify it, average over the clip.

    TSM: Temporal Shift Module for Efficient Video Understanding,
    https://arxiv.org/abs/1811.08383.

    Args:
        num_classes: Classes ``K``.
        in_channels: Channels of the backbone's features (2048 for ResNet-50, 1280 for
            MobileNetV2).
        num_segments: Frames per clip ``T`` that the backbone was built for. Defaults to 8.
        loss_cls: The training loss: None (``CrossEntropyLoss``),
            ``dict(type='CrossEntropyLoss', loss_weight=..., class_weight=...)`` or any
            ``nn.Module`` called as ``loss(scores, labels)``. Defaults to None.
        spatial_type: ``'avg'`` (global average pool) or None (features already pooled,
            ``[N * T, C]`` or ``[N * T, C, 1, 1]``). Defaults to ``'avg'``.
        consensus: How the frames of a clip are combined: None or
            ``dict(type='AvgConsensus', dim=1)`` (the mean). Defaults to None (the mean).
        dropout_ratio: Dropout probability before ``fc_cls``; 0 for none. Defaults to 0.8.
        init_std: Std of the normal initialisation of ``fc_cls.weight``. Defaults to 0.001.
        is_shift: The backbone shifts (MMAction2's argument; kept for configs, it changes no
            number here: see ``temporal_pool``). Defaults to True.
        temporal_pool: The backbone pools time by 2, so a clip reaches the head with
            ``ceil(num_segments / 2)`` frames. Defaults to False.
        average_clips: How :meth:`average_clip` combines the views of a video: ``'prob'``,
            ``'score'`` or None. Defaults to None (MMAction2's default; its TSM configs set
            ``'prob'``).
        label_smooth_eps: Label smoothing of :meth:`loss`. Defaults to 0.

    Raises:
        ValueError: An argument outside the values above.
    """

    def __init__(self, num_classes: int, in_channels: int, num_segments: int = 8,
                 loss_cls: Mapping[str, Any] | nn.Module | None = None,
                 spatial_type: Literal['avg'] | None = 'avg',
                 consensus: Mapping[str, Any] | None = None, dropout_ratio: float = 0.8,
                 init_std: float = 0.001, is_shift: bool = True, temporal_pool: bool = False,
                 average_clips: AverageClips = None, label_smooth_eps: float = 0.0) -> None:
        super().__init__()
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels),
                            ('num_segments', num_segments)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if spatial_type not in ('avg', None):
            # MMAction2 silently skips pooling for any other value
            raise ValueError(f"spatial_type must be 'avg' or None, got {spatial_type!r}")
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f'dropout_ratio must be in [0, 1), got {dropout_ratio!r}')
        if not 0 <= label_smooth_eps < 1:
            raise ValueError(f'label_smooth_eps must be in [0, 1), got {label_smooth_eps!r}')
        check_average_clips(average_clips)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.num_segments = num_segments
        self.spatial_type = spatial_type
        self.dropout_ratio = dropout_ratio
        self.init_std = init_std
        self.is_shift = is_shift
        self.temporal_pool = temporal_pool
        self.average_clips = average_clips
        self.label_smooth_eps = label_smooth_eps
        self.loss_cls = _build_loss(loss_cls)
        self.consensus = _build_consensus(consensus)
        self.avg_pool = nn.AdaptiveAvgPool2d(1) if spatial_type == 'avg' else None
        self.dropout = nn.Dropout(p=dropout_ratio) if dropout_ratio else None
        # `fc_cls`: the name MMAction2's checkpoints use (cls_head.fc_cls.weight/bias)
        self.fc_cls = nn.Linear(in_channels, num_classes)
        self.init_weights()

    @property
    def frames_per_clip(self) -> int:
        """Frames of a clip in the features: ``ceil(T / 2)`` after a temporal pool, else T."""
        return math.ceil(self.num_segments / 2) if self.temporal_pool else self.num_segments

    def init_weights(self) -> None:
        """``fc_cls.weight`` from ``N(0, init_std)``, its bias 0 (MMEngine's ``normal_init``)."""
        nn.init.normal_(self.fc_cls.weight, 0.0, self.init_std)
        nn.init.zeros_(self.fc_cls.bias)

    def reset(self, num_classes: int) -> None:
        """A new ``fc_cls`` for ``num_classes`` classes, freshly initialised."""
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        old = self.fc_cls.weight
        self.num_classes = num_classes
        self.fc_cls = nn.Linear(self.in_channels, num_classes, device=old.device,
                                dtype=old.dtype)
        self.init_weights()

    def forward(self, x: torch.Tensor, num_segs: int | None = None) -> torch.Tensor:
        """Class scores of each clip.

        Args:
            x: Backbone features ``[N * T', C, H, W]`` (``[N * T', C]`` with
                ``spatial_type=None``), ``T'`` = :attr:`frames_per_clip`.
            num_segs: Unused, as in MMAction2 (whose recognizer passes it); the frames of a
                clip are ``num_segments``. Defaults to None.

        Returns:
            ``[N, num_classes]`` scores (logits), the mean over the clip's frames.

        Raises:
            ValueError: ``x`` has not ``in_channels`` channels or its batch is not a multiple
                of the frames of a clip.
        """
        if x.dim() < 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'TSMHead expects features [N * T, {self.in_channels}, H, W], got '
                             f'{list(x.shape)}')
        frames = self.frames_per_clip
        if x.shape[0] % frames:
            raise ValueError(f'TSMHead expects a batch of N * {frames} frames '
                             f'(num_segments={self.num_segments}'
                             f'{", temporal_pool" if self.temporal_pool else ""}), got '
                             f'{x.shape[0]}')
        if self.avg_pool is not None:
            x = self.avg_pool(x)
        x = torch.flatten(x, 1)
        if self.dropout is not None:
            x = self.dropout(x)
        scores = self.fc_cls(x)
        scores = scores.view(-1, frames, scores.shape[-1])
        return self.consensus(scores).squeeze(1)

    def average_clip(self, scores: torch.Tensor, num_views: int = 1) -> torch.Tensor:
        """Combine the views of each video by ``average_clips``: :func:`average_clip`.

        Args:
            scores: ``[N * V, K]``, the views of a video adjacent.
            num_views: ``V``. Defaults to 1.

        Returns:
            ``[N, K]``, or ``[N, V, K]`` with ``average_clips=None``.
        """
        return average_clip(scores, num_views, self.average_clips)

    def loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss of ``[N, K]`` scores for ``[N]`` class indices (or ``[N, K]``
        soft labels), with ``label_smooth_eps`` applied as MMAction2's ``BaseHead`` does."""
        if self.label_smooth_eps:
            if labels.shape != scores.shape:
                labels = F.one_hot(labels, num_classes=self.num_classes).to(scores.dtype)
            labels = (1 - self.label_smooth_eps) * labels + \
                self.label_smooth_eps / self.num_classes
        return self.loss_cls(scores, labels)

    def extra_repr(self) -> str:
        return (f'num_segments={self.num_segments}, temporal_pool={self.temporal_pool}, '
                f'average_clips={self.average_clips!r}')
