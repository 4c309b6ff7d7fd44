"""``create_model`` and ``list_models``: named TSM recognizers, timm's convention.

``create_model(name, pretrained=True)`` builds the :class:`Recognizer` of a zoo entry
(:mod:`tsmnet.weights.zoo`; names are MMAction2's config names) and loads its released
checkpoint, downloaded through ``torch.hub`` (:mod:`tsmnet.weights.download`). Keyword
arguments change the architecture (``depth=18``, ``is_shift=False``...): the backbone is built
first and the head follows it. ``create_model(pretrained=path)`` with no name rebuilds the
model a self-describing checkpoint describes (:func:`tsmnet.save`, ``tsmnet finetune``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..weights.checkpoint import CheckpointMismatchError
from ..weights.download import download_weights
from ..weights.saved import SavedModelInfo, read_saved
from ..weights.zoo import ENTRIES, WeightsEntry, list_weights, weights
from .architecture import BACKBONES, SHARED_ARGS, build_parts
from .recognizer import Recognizer

__all__ = ['BACKBONES', 'SHARED_ARGS', 'build_recognizer', 'create_model', 'list_models']


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


def create_model(name: str | None = None, pretrained: bool | str | Path = False,
                 num_classes: int | None = None, **kwargs: Any) -> Recognizer:
    """Build the recognizer of a named entry or of a saved model, optionally with weights.

    Args:
        name: An entry name (:func:`list_models`), e.g.
            ``'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'``; None: the
            architecture a saved model describes (``pretrained`` a path, URL or folder that
            :func:`tsmnet.save` or ``tsmnet finetune`` wrote). Defaults to None.
        pretrained: False: initialised from scratch; True: the released checkpoint
            (downloaded into the ``torch.hub`` cache, sha256 prefix checked); a path or URL:
            that checkpoint (MMAction2's layout, or a bare state dict) or a saved-model folder
            (``model.safetensors`` and ``config.json``). Defaults to False.
        num_classes: Classes of the head; None: the entry's, or the checkpoint's. A number
            other than the checkpoint's head asks for a new head: the backbone is loaded, the
            head initialised (fine-tuning), with a warning. Defaults to None.
        **kwargs: Arguments of the backbone (``depth``, ``shift_mode``, ``frozen_stages``...)
            or of :class:`TSMHead` (``dropout_ratio``, ``average_clips``...), overriding the
            entry's (or the saved model's); ``max_views`` is the :class:`Recognizer`'s. The
            backbone is built first and the head follows it: its ``in_channels`` are the
            backbone's feature channels (``depth=18``: 512), and ``num_segments``,
            ``is_shift`` and ``temporal_pool`` go to both. ``is_shift=False`` builds a TSN; a
            TSM checkpoint still loads into it (:meth:`Recognizer.load_checkpoint`).

    Returns:
        The :class:`Recognizer`, in train mode (call ``.eval()`` for inference), with
        ``pretrained_cfg`` set to the entry (None when unknown), ``class_names`` and
        ``protocol`` to the checkpoint's or the entry's.

    Raises:
        tsmnet.weights.zoo.UnknownModelError: ``name`` is not an entry (close names suggested).
        TypeError: An argument neither the backbone nor the head takes (named), ``in_channels``,
            ``temporal_pool=True`` for a backbone that cannot pool time, a ``pretrained``
            of another type, or no name and no checkpoint.
        ValueError: Bad ``num_classes``, a bad value of a keyword argument (raised by the
            backbone or the head, naming it), or no name and a checkpoint that does not
            describe its architecture (a release, a bare state dict).
        FileNotFoundError: ``pretrained`` is a path and nothing is there.
        tsmnet.weights.download.WeightsDownloadError: The weights cannot be downloaded.
        tsmnet.weights.checkpoint.CheckpointMismatchError: The checkpoint does not fit the
            model (e.g. the released ResNet-50 weights with ``depth=18``, or a head of other
            classes and no ``num_classes`` asking for a new one); nothing trained is dropped.
    """
    if num_classes is not None and (not isinstance(num_classes, int) or
                                    isinstance(num_classes, bool) or num_classes < 1):
        raise ValueError(f'num_classes must be a positive int or None, got {num_classes!r}')
    if not isinstance(pretrained, (bool, str, Path)):
        raise TypeError(f'pretrained must be a bool, a path or a URL, got '
                        f'{type(pretrained).__name__}')
    entry = None if name is None else weights(name)
    if entry is None and isinstance(pretrained, bool):
        raise TypeError('create_model needs a model name (tsmnet.list_models()), or '
                        'pretrained=PATH of a saved model (tsmnet.save, tsmnet finetune) to '
                        'rebuild')
    source = _weights_source(entry, pretrained)
    state_dict, info = (None, None) if source is None else read_saved(source)
    if entry is None:
        if info.architecture is None:
            raise ValueError(f'checkpoint {source} does not describe its architecture (no '
                             f"meta['tsmnet']: a release or a bare state dict): give the model "
                             f'name, create_model(NAME, pretrained=...)')
        model = build_recognizer(info.architecture, num_classes, **kwargs)
        entry = ENTRIES.get(info.model) if info.model else None
    else:
        model = build_recognizer(entry, num_classes, **kwargs)
    if source is None:
        model.init_weights()
    else:
        _load(model, state_dict, info, new_head=num_classes is not None, named=name)
    model.pretrained_cfg = entry
    model.protocol = (info.protocol if info is not None and info.protocol is not None
                      else entry.protocol if entry is not None else None)
    names = info.class_names if info is not None else None
    if names is None and entry is not None and (info is None or info.num_classes is None
                                                or info.num_classes == entry.num_classes):
        names = list(entry.labels)
    model.class_names = names if names is not None and len(names) == model.num_classes \
        else None
    return model


def _load(model: Recognizer, state_dict: dict[str, torch.Tensor], info: SavedModelInfo,
          new_head: bool, named: str | None) -> None:
    """Load ``state_dict`` strictly; a head of other classes only when ``new_head`` asks for
    a new one (then warned)."""
    rows = info.num_classes
    head = rows == model.num_classes
    if rows is not None and not head and not new_head:
        raise CheckpointMismatchError(
            f'checkpoint {info.source} has a head of {rows} classes, the model '
            f'{model.num_classes}: pass num_classes={rows} to load it, or another num_classes '
            f'to start a new head{_describes_itself(info, named)}')
    if not head and not new_head:  # no head in the file and none asked for: strict says so
        head = True
    if not head:
        found = f'a head of {rows} classes' if rows is not None else 'no head'
        warnings.warn(f'checkpoint {info.source} has {found}; num_classes='
                      f'{model.num_classes} asks for a new one: cls_head.fc_cls is '
                      f'initialised, not loaded', UserWarning, stacklevel=3)
    try:
        model.load_checkpoint(state_dict, head=head)
    except CheckpointMismatchError as err:
        message = str(err).replace('checkpoint state dict', f'checkpoint {info.source}', 1)
        raise CheckpointMismatchError(message + _describes_itself(info, named)) from None
    if not head:
        model.cls_head.init_weights()


def _describes_itself(info: SavedModelInfo, named: str | None) -> str:
    if named is None or info.architecture is None:
        return ''
    return (f' (the checkpoint describes its own model: tsmnet.load({info.source!r}), or '
            f'create_model(pretrained=...) without a name, rebuilds it)')


def build_recognizer(entry: WeightsEntry | Mapping[str, Any], num_classes: int | None = None,
                     **kwargs: Any) -> Recognizer:
    """The :class:`Recognizer` of an entry's architecture or of a description, not
    initialised from weights.

    Args:
        entry: The zoo entry, or a description (:meth:`Recognizer.architecture`).
        num_classes: Classes of the head; None: the entry's. Defaults to None.
        **kwargs: As :func:`create_model`'s.

    Returns:
        The backbone, built first, and a :class:`TSMHead` that follows it (``in_channels``,
        ``num_segments``, ``is_shift``, ``temporal_pool`` read off the backbone).

    Raises:
        TypeError: A keyword argument neither part takes, ``in_channels``, or
            ``temporal_pool=True`` for a backbone without a temporal pool; each named.
    """
    architecture = entry.architecture if isinstance(entry, WeightsEntry) else entry
    backbone, head, max_views = build_parts(architecture, num_classes, **kwargs)
    return Recognizer(backbone, head, max_views=max_views)


def _weights_source(entry: WeightsEntry | None, pretrained: bool | str | Path) -> str | None:
    if pretrained is False:
        return None
    if pretrained is True:
        return str(download_weights(entry.url))
    text = str(pretrained)
    if '://' in text:
        return str(download_weights(text))
    if not Path(text).exists():
        raise FileNotFoundError(f'pretrained: checkpoint file not found: {text}')
    return text
