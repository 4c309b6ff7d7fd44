"""A recognizer's architecture as plain data, and back: what a self-describing checkpoint holds.

The description is MMAction2's model config, the form of a zoo entry's
:attr:`tsmnet.weights.WeightsEntry.architecture` and of a config's ``model.backbone`` and
``model.cls_head``::

    {'backbone': {'type': 'ResNetTSM', 'depth': 50, 'num_segments': 8, 'shift_div': 8,
                  'shift_place': 'blockres', 'shift_mode': 'bidirectional', ...},
     'cls_head': {'type': 'TSMHead', 'num_classes': 400, 'in_channels': 2048, ...}}

It holds only plain values (str, int, float, bool, None, lists, dicts with str keys),
so it goes into a checkpoint's ``meta`` (``torch.load(weights_only=True)`` reads it) and into
``config.json`` alike. :func:`describe_backbone` reads the built modules (their constructor
arguments, kept as attributes of the same name), so a model changed after it was built
(``reset_head``, ``frozen_stages``) is described as it is now; :func:`build_parts` builds the
modules of a description.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from .head import AvgConsensus, CrossEntropyLoss, TSMHead
from .mobilenet_v2_tsm import MobileNetV2TSM
from .mobileone import ARCH_ZOO
from .mobileone_tsm import MobileOneTSM
from .resnet_tsm import ResNetTSM

__all__ = ['BACKBONES', 'SHARED_ARGS', 'build_parts', 'describe_backbone', 'describe_head',
           'is_description']

BACKBONES: dict[str, type[nn.Module]] = {'ResNetTSM': ResNetTSM,
                                         'MobileNetV2TSM': MobileNetV2TSM,
                                         'MobileOneTSM': MobileOneTSM}
# the backbone's temporal structure, which the head mirrors (TSMHead takes them too)
SHARED_ARGS: tuple[str, ...] = ('num_segments', 'is_shift', 'temporal_pool')
# the head's own arguments; in_channels and the shared ones are read off the built backbone
HEAD_ARGS = frozenset(inspect.signature(TSMHead).parameters) - {'num_classes', 'in_channels'}
# where weights come from, not what the network is: a description never downloads anything
_NOT_ARCHITECTURE = frozenset({'pretrained', 'init_cfg', 'torchvision_pretrain', 'pretrained2d'})


def constructor_args(cls: type[nn.Module]) -> dict[str, inspect.Parameter]:
    """The named parameters of ``cls`` and of its tsmnet base classes (what ``**kwargs``
    passes on), in order."""
    params: dict[str, inspect.Parameter] = {}
    for base in cls.__mro__:
        if base.__module__.startswith('tsmnet.') and '__init__' in vars(base):
            for p in inspect.signature(base).parameters.values():
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    params.setdefault(p.name, p)
    return params


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain data (mappings become dicts), or TypeError naming ``where``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):  # lists: what JSON gives back
        return [_plain(v, f'{where}[{i}]') for i, v in enumerate(value)]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f'{where}.{k}') for k, v in value.items()}
    raise TypeError(f'cannot describe {where}: a {type(value).__name__} is not plain data '
                    f'(str, number, bool, None, list, tuple or dict)')


def describe_backbone(backbone: nn.Module) -> dict[str, Any]:
    """The constructor arguments that rebuild ``backbone``: ``{'type': 'ResNetTSM', ...}``.

    Raises:
        TypeError: ``backbone`` is not one of :data:`BACKBONES`, or an argument is not plain
            data (named).
    """
    name = type(backbone).__name__
    if BACKBONES.get(name) is not type(backbone):
        raise TypeError(f'cannot describe a {name} backbone: expected one of '
                        f'{", ".join(BACKBONES)}')
    args: dict[str, Any] = {'type': name}
    for arg in constructor_args(type(backbone)):
        if arg not in _NOT_ARCHITECTURE and hasattr(backbone, arg):
            args[arg] = _plain(getattr(backbone, arg), f'{name}.{arg}')
    if isinstance(backbone, MobileOneTSM):  # the zoo's name ('s4') of an expanded arch
        args['arch'] = next((key for key, value in ARCH_ZOO.items()
                             if _plain(dict(value), 'arch') == args['arch']), args['arch'])
    return args


def describe_head(head: TSMHead) -> dict[str, Any]:
    """The constructor arguments that rebuild ``head``: ``{'type': 'TSMHead', ...}``.

    Raises:
        TypeError: The head's loss or consensus is a module of another kind (named).
    """
    args: dict[str, Any] = {'type': 'TSMHead'}
    for arg in inspect.signature(TSMHead).parameters:
        if arg == 'consensus':
            if type(head.consensus) is not AvgConsensus:
                raise TypeError(f'cannot describe a consensus {type(head.consensus).__name__}')
            args[arg] = {'type': 'AvgConsensus', 'dim': head.consensus.dim}
        elif arg == 'loss_cls':
            loss = head.loss_cls
            if type(loss) is not CrossEntropyLoss:
                raise TypeError(f'cannot describe a loss_cls {type(loss).__name__}: only '
                                f"tsmnet's CrossEntropyLoss is plain data")
            args[arg] = {'type': 'CrossEntropyLoss', 'loss_weight': loss.loss_weight,
                         'class_weight': None if loss.class_weight is None
                         else list(loss.class_weight)}
        else:
            args[arg] = _plain(getattr(head, arg), f'TSMHead.{arg}')
    return args


def is_description(architecture: Any) -> bool:
    """Whether ``architecture`` has the form of a description (``backbone`` and ``cls_head``
    mappings, the backbone with a ``type``)."""
    return (isinstance(architecture, Mapping)
            and isinstance(architecture.get('backbone'), Mapping)
            and isinstance(architecture.get('cls_head'), Mapping)
            and 'type' in architecture['backbone'])


def build_parts(architecture: Mapping[str, Any], num_classes: int | None = None,
                caller: str = 'create_model',
                **kwargs: Any) -> tuple[nn.Module, TSMHead, int | None]:
    """The backbone and head of a description, not initialised from weights.

    Args:
        architecture: ``{'backbone': {'type': ..., ...}, 'cls_head': {...}}``.
        num_classes: Classes of the head; None: the description's. Defaults to None.
        caller: The function named in errors. Defaults to ``'create_model'``.
        **kwargs: Arguments of the backbone or of :class:`TSMHead` overriding the
            description's (``depth=18``, ``shift_mode='causal'``, ``dropout_ratio=0.2``...);
            ``max_views`` is the recognizer's. ``num_segments``, ``is_shift`` and
            ``temporal_pool`` go to both.

    Returns:
        The backbone, built first; a :class:`TSMHead` that follows it (``in_channels``,
        ``num_segments``, ``is_shift``, ``temporal_pool`` read off the backbone); and
        ``max_views``.

    Raises:
        TypeError: A keyword argument neither part takes, ``in_channels``, ``temporal_pool``
            for a backbone without a temporal pool; each named.
        ValueError: ``architecture`` is not a description of a known backbone and a TSMHead.
    """
    if not is_description(architecture):
        raise ValueError(f"{caller}: an architecture must be {{'backbone': {{'type': ..., "
                         f"...}}, 'cls_head': {{...}}}}, got {architecture!r}")
    backbone_kwargs = dict(architecture['backbone'])
    kind = backbone_kwargs.pop('type')
    backbone_cls = BACKBONES.get(str(kind).removeprefix('tsmnet.'))
    if backbone_cls is None:
        raise ValueError(f'{caller}: unknown backbone type {kind!r}; expected one of '
                         f'{", ".join(BACKBONES)}')
    head_kwargs = dict(architecture['cls_head'])
    if head_kwargs.pop('type', 'TSMHead') not in ('TSMHead', 'tsmnet.TSMHead'):
        raise ValueError(f"{caller}: cls_head type must be 'TSMHead', got "
                         f"{architecture['cls_head']['type']!r}")
    if num_classes is not None:
        head_kwargs['num_classes'] = num_classes
    backbone_args = frozenset(constructor_args(backbone_cls))
    max_views = kwargs.pop('max_views', None)
    for key, value in kwargs.items():
        if key == 'in_channels':
            raise TypeError(f'{caller}: in_channels is not an argument: the head\'s '
                            f'in_channels follow the backbone\'s feature channels (change the '
                            f'backbone, e.g. depth=18), and frames have 3 channels; got '
                            f'in_channels={value!r}')
        if key in SHARED_ARGS and key not in backbone_args:
            if value:  # False/None: what a backbone without it does anyway
                raise TypeError(f'{caller}: a {backbone_cls.__name__} takes no {key}; got '
                                f'{key}={value!r}')
        elif key in backbone_args:  # the shared ones too: the head reads them back below
            backbone_kwargs[key] = value
        elif key in HEAD_ARGS:
            head_kwargs[key] = value
        else:
            raise TypeError(f'{caller} got an unexpected keyword argument {key!r} (neither '
                            f'a {backbone_cls.__name__} nor a TSMHead argument)')
    if 'pretrained' in backbone_args:  # MobileOneTSM has init_cfg instead
        backbone_kwargs['pretrained'] = None
    backbone = backbone_cls(**backbone_kwargs)
    # the head's T is the description's unless the caller sets one for both (MobileOne-S4's
    # backbone shifts within groups of 8 frames of its 16-frame clips)
    segments = backbone.num_segments if 'num_segments' in kwargs else \
        head_kwargs.get('num_segments', backbone.num_segments)
    head_kwargs.update(in_channels=backbone.feat_dim, num_segments=segments,
                       is_shift=bool(backbone.is_shift),
                       temporal_pool=bool(getattr(backbone, 'temporal_pool', False)))
    return backbone, TSMHead(**head_kwargs), max_views
