"""Recognizer: a TSM backbone and its head, with MMAction2's ``Recognizer2D`` state dict.

A released MMAction2 TSM checkpoint (``backbone.*``, ``cls_head.fc_cls.*``) loads into it
strictly and safely (``weights_only=True``), also into the same model without shifts (a
TSN); ``forward`` takes normalised clips and averages the views of a video as MMAction2's
test step does.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..video import TestProtocol
from ..weights.checkpoint import (
    LoadReport,
    load_state_dict_checked,
    read_checkpoint,
    rewrap_state_dict,
    wrap_names_of,
)
from ..weights.saved import protocol_from_dict
from .architecture import build_parts, describe_backbone, describe_head
from .head import TSMHead
from .init_log import init_info_at_debug

__all__ = ['Recognizer']


def _checkpoint_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The state dict of a whole MMAction2 checkpoint (``meta`` + ``state_dict``) or of a bare
    state dict; no key is converted."""
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not obj or \
            not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'checkpoint {source} holds no state dict of tensors')
    return dict(obj)


class Recognizer(nn.Module):
    """A TSM video classifier: ``backbone`` per frame, then ``cls_head`` per clip.

    Its ``state_dict()`` keys and shapes are those of MMAction2 1.2.0's ``Recognizer2D`` with
    the same backbone and head (``backbone.*``, ``cls_head.fc_cls.weight``/``bias``; the data
    preprocessor's mean and std are not part of it: inputs come normalised).

    Args:
        backbone: A TSM backbone taking ``[N * T, C, H, W]`` (:class:`tsmnet.ResNetTSM`,
            :class:`tsmnet.MobileNetV2TSM`...) with one output stage.
        cls_head: Its :class:`TSMHead` (same ``temporal_pool``; ``num_segments`` the
            backbone's or a multiple of it, whose clips the backbone shifts in groups).
        max_views: At most this many views (clips of ``T`` frames) go through the backbone
            at once when ``forward`` takes ``[N, V, T, C, H, W]``, to bound memory (MMAction2's
            ``test_cfg.max_testing_views``, counted in views); the scores are the same.
            Defaults to None (all at once).
        architecture: Instead of ``backbone`` and ``cls_head``: a description
            (:meth:`architecture` of a model, a zoo entry's; :mod:`tsmnet.models.architecture`),
            built and initialised from scratch. Plain data, so Hugging Face's
            ``PyTorchModelHubMixin`` can save it as the config of a subclass. Defaults to None.
        class_names: The classes' names, in score order (:attr:`class_names`). Defaults to None.
        protocol: The test protocol, or a dict of its fields (:attr:`protocol`). Defaults to
            None.

    Raises:
        ValueError: ``cls_head``'s ``num_segments`` is not a multiple of the backbone's, or they
            disagree on ``temporal_pool`` or the feature channels; ``class_names`` of another
            length than the classes.
        TypeError: Neither ``backbone`` and ``cls_head`` nor ``architecture``, or both.
    """

    def __init__(self, backbone: nn.Module | None = None, cls_head: TSMHead | None = None,
                 max_views: int | None = None, *,
                 architecture: Mapping[str, Any] | None = None,
                 class_names: Sequence[str] | None = None,
                 protocol: TestProtocol | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if architecture is not None:
            if backbone is not None or cls_head is not None:
                raise TypeError('Recognizer takes backbone and cls_head, or architecture, '
                                'not both')
            backbone, cls_head, views = build_parts(architecture, caller='Recognizer')
            max_views = views if max_views is None else max_views
        elif backbone is None or cls_head is None:
            raise TypeError('Recognizer needs a backbone and a cls_head, or an architecture '
                            '(Recognizer.architecture() of a model, a zoo entry\'s)')
        if max_views is not None and (not isinstance(max_views, int) or
                                      isinstance(max_views, bool) or max_views < 1):
            raise ValueError(f'max_views must be a positive int or None, got {max_views!r}')
        self.max_views = max_views
        if not isinstance(cls_head, TSMHead):
            raise TypeError(f'cls_head must be a tsmnet.TSMHead, got {type(cls_head).__name__}')
        segments = getattr(backbone, 'num_segments', None)
        # a head T that is a multiple of the backbone's: the backbone shifts within groups of
        # its num_segments frames (MMAction2's MobileOne-S4 TSM: 8 in the backbone, 16 in the head)
        if segments is not None and cls_head.num_segments % segments != 0:
            raise ValueError(f'cls_head num_segments={cls_head.num_segments} is not a multiple '
                             f'of the backbone num_segments={segments}')
        pool = bool(getattr(backbone, 'temporal_pool', False))
        if pool != cls_head.temporal_pool:
            raise ValueError(f'cls_head temporal_pool={cls_head.temporal_pool} does not match '
                             f'the backbone temporal_pool={pool}')
        feat_dim = getattr(backbone, 'feat_dim', None)
        out_indices = getattr(backbone, 'out_indices', None)
        if out_indices is not None and len(out_indices) != 1:
            raise ValueError(f'the backbone must return one stage (out_indices of one index), '
                             f'got out_indices={tuple(out_indices)}')
        if isinstance(feat_dim, int) and feat_dim != cls_head.in_channels:
            raise ValueError(f'cls_head in_channels={cls_head.in_channels} does not match the '
                             f'backbone features ({feat_dim} channels)')
        self.backbone = backbone
        self.cls_head = cls_head
        self.class_names = class_names
        self.protocol = protocol
        if architecture is not None:  # built here: nothing else would initialise it
            self.init_weights()

    @property
    def class_names(self) -> list[str] | None:
        """Class names in the index order of the scores (None: unknown); :func:`tsmnet.save`
        writes them, :func:`tsmnet.load` and ``create_model`` set them."""
        return self._class_names

    @class_names.setter
    def class_names(self, names: Sequence[str] | None) -> None:
        if names is not None:
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise TypeError(f'class_names must be a sequence of str or None, got {names!r}')
            if len(names) != self.num_classes:
                raise ValueError(f'class_names: {len(names)} names for a head of '
                                 f'{self.num_classes} classes')
            names = list(names)
        self._class_names = names

    @property
    def protocol(self) -> TestProtocol | None:
        """How videos are read for this model at test time (None: unknown); :func:`tsmnet.save`
        writes it, :func:`tsmnet.load` and ``create_model`` set it."""
        return self._protocol

    @protocol.setter
    def protocol(self, protocol: TestProtocol | Mapping[str, Any] | None) -> None:
        if isinstance(protocol, Mapping):
            protocol = protocol_from_dict(protocol)
        if protocol is not None and not isinstance(protocol, TestProtocol):
            raise TypeError(f'protocol must be a tsmnet.video.TestProtocol, a dict of its '
                            f'fields or None, got {type(protocol).__name__}')
        self._protocol = protocol

    def architecture(self) -> dict[str, Any]:
        """The model as plain data: ``{'backbone': {'type': ..., ...}, 'cls_head': {'type':
        'TSMHead', ...}}`` (MMAction2's config form; :mod:`tsmnet.models.architecture`).
        ``Recognizer(architecture=...)`` and ``create_model(architecture=...)`` rebuild the
        same network; :func:`tsmnet.save` writes it into the checkpoint."""
        return {'backbone': describe_backbone(self.backbone),
                'cls_head': describe_head(self.cls_head)}

    @property
    def num_segments(self) -> int:
        """Frames per clip ``T``."""
        return self.cls_head.num_segments

    @property
    def num_classes(self) -> int:
        return self.cls_head.num_classes

    def init_weights(self) -> None:
        """Initialise the backbone (its ``init_weights()``: ``pretrained`` or from scratch)
        and the head."""
        init = getattr(self.backbone, 'init_weights', None)
        if init is not None:
            with init_info_at_debug():
                init()
        self.cls_head.init_weights()

    def train(self, mode: bool = True) -> Recognizer:
        super().train(mode)
        return self

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Backbone features of ``[N, T, C, H, W]`` clips: ``[N * T', C', H', W']``."""
        clips = self._check_clips(clips, 5)
        return self.backbone(clips.flatten(0, 1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Class scores of clips, or of the views of videos.

        Args:
            clips: Normalised frames, ``[N, T, C, H, W]`` (``N`` clips of ``T`` frames), or
                ``[N, V, T, C, H, W]`` (``V`` views of each of ``N`` videos: clips x crops,
                MMAction2's ``num_clips * num_crops``).

        Returns:
            ``[N, num_classes]``. For ``[N, T, C, H, W]``: each clip's scores (logits, what
            the loss takes; MMAction2's ``mode='tensor'``). For ``[N, V, T, C, H, W]``: the
            views of each video averaged by ``cls_head.average_clips`` as MMAction2's
            ``mode='predict'`` does (``'prob'``: the mean of the softmax; ``'score'``: the
            mean of the logits; None: ``[N, V, num_classes]``, each view's logits). In eval
            mode a video's scores do not depend on the other videos in the batch.

        Raises:
            TypeError, ValueError: ``clips`` is not a floating-point tensor of those shapes
                with ``T = num_segments``.
        """
        if isinstance(clips, torch.Tensor) and clips.dim() == 6:
            views = self._check_clips(clips, 6).flatten(0, 1)  # [N * V, T, C, H, W]
            step = self.max_views or views.shape[0]
            scores = torch.cat([self._scores(views[i:i + step].flatten(0, 1))
                                for i in range(0, views.shape[0], step)])
            return self.cls_head.average_clip(scores, clips.shape[1])
        return self._scores(self._check_clips(clips, 5).flatten(0, 1))

    def _scores(self, frames: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(frames))

    def _check_clips(self, clips: Any, dims: int) -> torch.Tensor:
        if not isinstance(clips, torch.Tensor):
            raise TypeError(f'clips must be a torch.Tensor, got {type(clips).__name__}')
        if clips.dim() != dims:
            raise ValueError(f'clips must be [N, T, C, H, W] or [N, V, T, C, H, W] (views), got '
                             f'shape {list(clips.shape)}')
        if clips.shape[-4] != self.num_segments:
            raise ValueError(f'clips must have T = num_segments = {self.num_segments} frames '
                             f'(dim {dims - 4}), got shape {list(clips.shape)}')
        if 0 in clips.shape[:dims - 4]:
            raise ValueError(f'clips must hold at least one clip, got shape {list(clips.shape)}')
        return clips

    def reset_head(self, num_classes: int) -> None:
        """Replace the classifier for ``num_classes`` classes (timm's ``reset_classifier``):
        a fresh ``cls_head.fc_cls``; the backbone is kept."""
        self.cls_head.reset(num_classes)
        if self._class_names is not None and len(self._class_names) != num_classes:
            self._class_names = None

    reset_classifier = reset_head

    def get_classifier(self) -> nn.Linear:
        """The final linear layer (timm's ``get_classifier``)."""
        return self.cls_head.fc_cls

    def load_checkpoint(self, source: str | Path | Mapping[str, Any], *, strict: bool = True,
                        head: bool = True) -> LoadReport:
        """Load a released MMAction2 recognizer checkpoint.

        Keys are MMAction2's; the conversions are the backbone's own (``fit_state_dict``: a
        training-form MobileOne checkpoint is reparameterised for a deploy-form model) and
        between wrapped and plain layouts
        (:func:`tsmnet.weights.checkpoint.rewrap_state_dict`): a TSM checkpoint, whose shifted
        convs carry the :class:`tsmnet.TemporalShift` segment (``...conv1.conv.net.weight``),
        loads into a model built with ``is_shift=False`` (``...conv1.conv.weight``, a TSN
        baseline from TSM weights), and a TSN checkpoint into a TSM. The weights are the
        same tensors; what moved is listed in the report's ``rewrapped``.

        Args:
            source: A file (the whole checkpoint with ``meta`` and ``state_dict``, or a bare
                state dict; read with ``torch.load(weights_only=True)``), or such a mapping.
            strict: Refuse a partial load (keys missing, unexpected or of another shape,
                named in the error). Defaults to True.
            head: Load ``cls_head`` too; False: the backbone only (the file's ``cls_head.*``
                keys are skipped, e.g. to fine-tune on other classes). Defaults to True.

        Returns:
            What was loaded.

        Raises:
            FileNotFoundError, UnsafeCheckpointError, ValueError: see
                :func:`tsmnet.weights.checkpoint.read_checkpoint`.
            CheckpointMismatchError: With ``strict``, the checkpoint does not fit exactly (no
                key is dropped to make it fit); nothing is loaded then.
        """
        if isinstance(source, Mapping):
            name, obj = 'state dict', source
        else:
            name, obj = str(source), read_checkpoint(source)
        state_dict = _checkpoint_state_dict(obj, name)
        fit = getattr(self.backbone, 'fit_state_dict', None)
        if fit is not None:  # e.g. a training-form MobileOne checkpoint for the deploy form
            state_dict = fit(state_dict, prefix='backbone.')
        report = LoadReport()
        target: nn.Module = self
        if not head:
            report.skipped = [k for k in state_dict if k.startswith('cls_head.')]
            state_dict = {k[len('backbone.'):] if k.startswith('backbone.') else f'<{k}>': v
                          for k, v in state_dict.items() if not k.startswith('cls_head.')}
            target = self.backbone
        fitted = rewrap_state_dict(state_dict, target.state_dict(), wrap_names_of(self.backbone))
        report.rewrapped = [new for new, old in zip(fitted, state_dict) if new != old]
        return load_state_dict_checked(target, fitted, strict=strict, source=name,
                                       report=report)

    @classmethod
    def from_parts(cls, backbone: nn.Module, cls_head: TSMHead,
                   source: str | Path | Mapping[str, Any]) -> Recognizer:
        """``Recognizer(backbone, cls_head)`` with ``source`` loaded strictly
        (:meth:`load_checkpoint`)."""
        model = cls(backbone, cls_head)
        model.load_checkpoint(source)
        return model

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
        """Deprecated as ``from_pretrained(backbone, cls_head, source)``: use
        :meth:`from_parts`. The name is left to Hugging Face's ``PyTorchModelHubMixin``: in a
        subclass that mixes it in, ``from_pretrained(repo_or_folder)`` is the mixin's."""
        if (args and isinstance(args[0], nn.Module)) or 'cls_head' in kwargs:
            warnings.warn('Recognizer.from_pretrained(backbone, cls_head, source) is deprecated; '
                          'use Recognizer.from_parts (to load a saved model: tsmnet.load)',
                          DeprecationWarning, stacklevel=2)
            return cls.from_parts(*args, **kwargs)
        parent = getattr(super(), 'from_pretrained', None)
        if parent is None:
            raise TypeError('Recognizer.from_pretrained takes (backbone, cls_head, source) '
                            '(deprecated: Recognizer.from_parts); to load a saved model or '
                            'folder use tsmnet.load(path), or mix in huggingface_hub\'s '
                            'PyTorchModelHubMixin')
        return parent(*args, **kwargs)
