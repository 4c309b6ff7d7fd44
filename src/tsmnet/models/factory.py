"""``create_model`` and ``list_models``: named TSM recognizers, timm's convention.

``create_model(name, pretrained=True)`` builds the :class:`Recognizer` of a zoo entry
(:mod:`tsmnet.weights.zoo`; names are MMAction2's config names) and loads its released
checkpoint, downloaded through ``torch.hub`` (:mod:`tsmnet.weights.download`). Keyword
arguments change the architecture (``depth=18``, ``is_shift=False``...): the backbone is built
first and the head follows it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from torch import nn

from ..weights.download import download_weights
from ..weights.zoo import WeightsEntry, list_weights, weights
from .head import TSMHead
from .mobilenet_v2_tsm import MobileNetV2TSM
from .mobileone_tsm import MobileOneTSM
from .recognizer import Recognizer
from .resnet_tsm import ResNetTSM

__all__ = ['create_model', 'list_models']

BACKBONES: dict[str, type[nn.Module]] = {'ResNetTSM': ResNetTSM,
                                         'MobileNetV2TSM': MobileNetV2TSM,
                                         'MobileOneTSM': MobileOneTSM}
# the head's own arguments; in_channels and the shared ones are read off the built backbone
_HEAD_ARGS = frozenset(inspect.signature(TSMHead).parameters) - {'num_classes', 'in_channels'}
# the backbone's temporal structure, which the head mirrors (TSMHead takes them too)
SHARED_ARGS: tuple[str, ...] = ('num_segments', 'is_shift', 'temporal_pool')


def list_models(filter: str = '', pretrained: bool | None = None) -> list[str]:
    """Names that :func:`create_model` builds.

    Args:
        filter: A shell-style pattern (``'*r50*kinetics*'``); a plain word matches the
            names containing it. Defaults to ``''`` (all).
        pretrained: True: names with released weights; False: names without; None: all.
            Every name has weights today. Defaults to None.

    Returns:
        Sorted names.
    """
    if pretrained not in (None, True, False):
        raise ValueError(f'pretrained must be True, False or None, got {pretrained!r}')
    return [] if pretrained is False else list_weights(filter)


def create_model(name: str, pretrained: bool | str | Path = False,
                 num_classes: int | None = None, **kwargs: Any) -> Recognizer:
    """Build the recognizer of a named entry, optionally with weights.

    Args:
        name: An entry name (:func:`list_models`), e.g.
            ``'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'``.
        pretrained: False: initialised from scratch; True: the released checkpoint
            (downloaded into the ``torch.hub`` cache, sha256 prefix checked); a path or URL:
            that checkpoint (MMAction2's layout, or a bare state dict). Defaults to False.
        num_classes: Classes of the head; None: the entry's. With weights and another
            number, the backbone is loaded and the head is new (fine-tuning). Defaults to None.
        **kwargs: Arguments of the backbone (``depth``, ``shift_mode``, ``frozen_stages``...)
            or of :class:`TSMHead` (``dropout_ratio``, ``average_clips``...), overriding the
            entry's; ``max_views`` is the :class:`Recognizer`'s. The backbone is built first
            and the head follows it: its ``in_channels`` are the backbone's feature channels
            (``depth=18``: 512), and ``num_segments``, ``is_shift`` and ``temporal_pool`` go to
            both. ``is_shift=False`` builds a TSN; a TSM checkpoint still loads into it
            (:meth:`Recognizer.load_checkpoint`).

    Returns:
        The :class:`Recognizer`, in train mode (call ``.eval()`` for inference), with
        ``pretrained_cfg`` set to the entry.

    Raises:
        tsmnet.weights.zoo.UnknownModelError: ``name`` is not an entry (close names suggested).
        TypeError: An argument neither the backbone nor the head takes (named), ``in_channels``,
            ``temporal_pool=True`` for a backbone that cannot pool time, or a ``pretrained``
            of another type.
        ValueError: Bad ``num_classes``, or a bad value of a keyword argument (raised by the
            backbone or the head, naming it).
        FileNotFoundError: ``pretrained`` is a path and no file is there.
        tsmnet.weights.download.WeightsDownloadError: The weights cannot be downloaded.
        tsmnet.weights.checkpoint.CheckpointMismatchError: The checkpoint does not fit the
            model (e.g. the released ResNet-50 weights with ``depth=18``).
    """
    entry = weights(name)
    if num_classes is not None and (not isinstance(num_classes, int) or
                                    isinstance(num_classes, bool) or num_classes < 1):
        raise ValueError(f'num_classes must be a positive int or None, got {num_classes!r}')
    if not isinstance(pretrained, (bool, str, Path)):
        raise TypeError(f'pretrained must be a bool, a path or a URL, got '
                        f'{type(pretrained).__name__}')
    model = build_recognizer(entry, num_classes=num_classes, **kwargs)
    source = _weights_source(entry, pretrained)
    if source is None:
        model.init_weights()
    else:  # another num_classes: the backbone of the checkpoint, a new head
        model.load_checkpoint(source, head=model.num_classes == entry.num_classes)
    model.pretrained_cfg = entry
    return model


def build_recognizer(entry: WeightsEntry, num_classes: int | None = None,
                     **kwargs: Any) -> Recognizer:
    """The :class:`Recognizer` of ``entry``'s architecture, not initialised from weights.

    Args:
        entry: The zoo entry.
        num_classes: Classes of the head; None: the entry's. Defaults to None.
        **kwargs: As :func:`create_model`'s.

    Returns:
        The backbone, built first, and a :class:`TSMHead` that follows it (``in_channels``,
        ``num_segments``, ``is_shift``, ``temporal_pool`` read off the backbone).

    Raises:
        TypeError: A keyword argument neither part takes, ``in_channels``, or
            ``temporal_pool=True`` for a backbone without a temporal pool; each named.
    """
    arch = entry.architecture
    backbone_kwargs = arch['backbone']
    backbone_cls = BACKBONES[backbone_kwargs.pop('type')]
    head_kwargs = arch['cls_head']
    head_kwargs.pop('type')
    if num_classes is not None:
        head_kwargs['num_classes'] = num_classes
    backbone_args = frozenset(inspect.signature(backbone_cls).parameters) | \
        _resnet_args(backbone_cls)
    max_views = kwargs.pop('max_views', None)
    for key, value in kwargs.items():
        if key == 'in_channels':
            raise TypeError(f'create_model: in_channels is not an argument: the head\'s '
                            f'in_channels follow the backbone\'s feature channels (change the '
                            f'backbone, e.g. depth=18), and frames have 3 channels; got '
                            f'in_channels={value!r}')
        if key in SHARED_ARGS and key not in backbone_args:
            if value:  # False/None: what a backbone without it does anyway
                raise TypeError(f'create_model: {entry.name} has a {backbone_cls.__name__}, '
                                f'which takes no {key}; got {key}={value!r}')
        elif key in backbone_args:  # the shared ones too: the head reads them back below
            backbone_kwargs[key] = value
        elif key in _HEAD_ARGS:
            head_kwargs[key] = value
        else:
            raise TypeError(f'create_model got an unexpected keyword argument {key!r} (neither '
                            f'a {backbone_cls.__name__} nor a TSMHead argument)')
    if 'pretrained' in backbone_args:  # MobileOneTSM has init_cfg instead
        backbone_kwargs.setdefault('pretrained', None)
    backbone = backbone_cls(**backbone_kwargs)
    # the head's T is the entry's unless the caller sets one for both (MobileOne-S4's backbone
    # shifts within groups of 8 frames of its 16-frame clips)
    segments = backbone.num_segments if 'num_segments' in kwargs else \
        head_kwargs.get('num_segments', backbone.num_segments)
    head_kwargs.update(in_channels=backbone.feat_dim, num_segments=segments,
                       is_shift=bool(backbone.is_shift),
                       temporal_pool=bool(getattr(backbone, 'temporal_pool', False)))
    return Recognizer(backbone, TSMHead(**head_kwargs), max_views=max_views)


def _resnet_args(backbone_cls: type[nn.Module]) -> frozenset[str]:
    """Arguments the backbone takes through ``**kwargs`` (its base classes')."""
    names: set[str] = set()
    for base in backbone_cls.__mro__[1:]:
        if base.__module__.startswith('tsmnet.') and '__init__' in vars(base):
            names |= set(inspect.signature(base).parameters)
    return frozenset(names - {'args', 'kwargs'})


def _weights_source(entry: WeightsEntry, pretrained: bool | str | Path) -> str | None:
    if pretrained is False:
        return None
    if pretrained is True:
        return str(download_weights(entry.url))
    text = str(pretrained)
    if '://' in text:
        return str(download_weights(text))
    if not Path(text).is_file():
        raise FileNotFoundError(f'pretrained: checkpoint file not found: {text}')
    return text
