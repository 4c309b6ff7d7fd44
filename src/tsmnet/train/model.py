"""The recognizer a fine-tuning run starts from: a zoo entry, its weights or none, and the
architecture changes ``tsmnet finetune`` offers (ResNet depth, no shift, causal shift)."""

from __future__ import annotations

from typing import Any, Literal

from ..models.factory import create_model
from ..models.recognizer import Recognizer
from ..weights.zoo import weights


def build_architecture(name: str, num_classes: int | None = None, *, depth: int | None = None,
                       is_shift: bool | None = None,
                       shift_mode: Literal['bidirectional', 'causal'] | None = None,
                       **head_kwargs: Any) -> Recognizer:
    """The recognizer of zoo entry ``name``, initialised from scratch, with another ResNet
    depth, the shift off in backbone and head (TSN), or a causal shift (an online model).

    Args:
        name: the zoo entry.
        num_classes: classes of the head (None: the entry's).
        depth: a ResNet depth (the head follows the new feature channels).
        is_shift: False for TSN.
        shift_mode: ``'causal'`` shifts one fold from the past only (streamable).
        **head_kwargs: :class:`TSMHead` arguments (``dropout_ratio``...).
    """
    changes = {k: v for k, v in (('depth', depth), ('is_shift', is_shift),
                                   ('shift_mode', shift_mode)) if v is not None}
    backbone = weights(name).architecture['backbone']
    if depth is not None and 'depth' not in backbone:
        raise ValueError(f"{name} is a {backbone['type']}: it has no depth")
    # the one builder: the head follows the backbone (in_channels, T, is_shift)
    return create_model(name, num_classes=num_classes, **changes, **head_kwargs)


def build_model(name: str, num_classes: int, weights_source: str | None = None,
                architecture: dict[str, Any] | None = None,
                frozen_stages: int = -1, **head_kwargs: Any) -> Recognizer:
    """The starting model of a fine-tuning run, with a head of ``num_classes`` classes.

    Args:
        name: the zoo entry.
        num_classes: classes of the new head.
        weights_source: ``'none'`` (from scratch), None (the entry's published weights), or a
            checkpoint file or URL.
        architecture: changes (``depth``, ``is_shift``, ``shift_mode``); ``depth`` and
            ``is_shift`` only from scratch.
        frozen_stages: freeze the stem and this many stages (-1: none).
        **head_kwargs: :class:`TSMHead` arguments.

    Raises:
        ValueError: an architecture change with published weights, or a bad argument.
    """
    architecture = dict(architecture or {})
    if weights_source == 'none':
        model = build_architecture(name, num_classes, **architecture, **head_kwargs)
    else:
        if set(architecture) - {'shift_mode'}:
            raise ValueError('--depth and --no-shift change the architecture: use them with '
                             '--weights none')
        model = create_model(name, pretrained=weights_source or True, num_classes=num_classes,
                             **architecture, **head_kwargs)
    if model.num_classes != num_classes:
        model.reset_head(num_classes)
    if frozen_stages >= 0:
        if not hasattr(model.backbone, 'frozen_stages'):
            raise ValueError(f'--frozen-stages: {type(model.backbone).__name__} has no stages '
                             'to freeze')
        model.backbone.frozen_stages = frozen_stages
    return model
