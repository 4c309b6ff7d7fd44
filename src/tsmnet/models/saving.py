"""``tsmnet.save`` and ``tsmnet.load``: a recognizer and everything needed to use it, in one file.

``save(model, 'model.pth')`` writes MMAction2's checkpoint layout (``state_dict`` + ``meta``;
MMAction2's ``init_recognizer`` and MMEngine's ``load_checkpoint`` read it) with the model's
description, class names and test protocol under ``meta['tsmnet']``
(:mod:`tsmnet.weights.saved`); ``save(model, 'folder')`` writes ``model.safetensors`` and
``config.json`` instead. ``load(path)`` rebuilds exactly that model and loads it strictly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ..fileio import save_torch
from ..video import TestProtocol
from ..weights.saved import saved_meta, write_folder
from .factory import create_model
from .recognizer import Recognizer

__all__ = ['load', 'save']

_FILE_SUFFIXES = ('.pth', '.pt', '.ckpt')


def save(model: Recognizer, path: str | Path, *, classes: Sequence[str] | None = None,
         protocol: TestProtocol | None = None, meta: Mapping[str, Any] | None = None,
         format: Literal['pth', 'safetensors'] | None = None) -> Path:
    """Save a recognizer with its architecture, class names and test protocol.

    Args:
        model: The recognizer.
        path: A ``.pth`` (``.pt``, ``.ckpt``) file, or a folder (any other name).
        classes: Class names in score order; None: ``model.class_names``. Defaults to None.
        protocol: How videos are read for it; None: ``model.protocol``. Defaults to None.
        meta: More entries of the ``.pth`` file's ``meta`` (``epoch``...); the folder form
            keeps them in ``config.json`` under ``meta``. Defaults to None.
        format: ``'pth'`` (one file, MMAction2's layout) or ``'safetensors'`` (a folder with
            ``model.safetensors`` and ``config.json``); None: by the name of ``path``.
            Defaults to None.

    Returns:
        The file or folder written.

    Raises:
        TypeError: ``model`` is not a :class:`Recognizer`, or its architecture is not plain
            data (named).
        ValueError: ``classes`` of another length than the model's classes, or a bad
            ``format``.
        tsmnet.fileio.WriteError: The file cannot be written.
    """
    if not isinstance(model, Recognizer):
        raise TypeError(f'save: model must be a tsmnet Recognizer, got {type(model).__name__}')
    if format is None:
        format = 'pth' if Path(path).suffix in _FILE_SUFFIXES else 'safetensors'
    if format not in ('pth', 'safetensors'):
        raise ValueError(f"save: format must be 'pth', 'safetensors' or None, got {format!r}")
    names = model.class_names if classes is None else list(classes)
    if names is not None and len(names) != model.num_classes:
        raise ValueError(f'save: {len(names)} class names for a head of {model.num_classes} '
                         f'classes')
    entry = getattr(model, 'pretrained_cfg', None)
    block = saved_meta(model.architecture(), names,
                       model.protocol if protocol is None else protocol,
                       getattr(entry, 'name', None))
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if format == 'safetensors':
        return write_folder(path, state_dict, {**block, **({'meta': dict(meta)} if meta else {})})
    file_meta = {**dict(meta or {}), 'tsmnet': block}
    if names is not None:
        file_meta.setdefault('classes', names)  # where MMAction2 users and older tsmnet look
    save_torch({'state_dict': state_dict, 'meta': file_meta}, path)
    return Path(path)


def load(path: str | Path, *, num_classes: int | None = None, **kwargs: Any) -> Recognizer:
    """The model a checkpoint or folder of :func:`save` (or ``tsmnet finetune``) describes,
    its weights loaded strictly, in eval mode.

    ``create_model(pretrained=path, ...).eval()``: see :func:`tsmnet.create_model` for the
    keyword arguments (they override the saved architecture) and the errors.

    Args:
        path: A ``.pth`` file, a URL, or a folder with ``model.safetensors`` and
            ``config.json``.
        num_classes: None: the saved head; another number: a new head (warned). Defaults to
            None.
        **kwargs: Backbone or head arguments overriding the saved ones (``max_views``...).

    Returns:
        The :class:`Recognizer` with ``class_names`` and ``protocol`` set from the file.
    """
    return create_model(pretrained=path, num_classes=num_classes, **kwargs).eval()
