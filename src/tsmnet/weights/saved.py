"""What a saved model carries besides its weights: architecture, class names, test protocol.

Two forms, one content:

- a ``.pth`` file in MMAction2's layout, ``{'state_dict': ..., 'meta': ...}`` (MMAction2 and
  MMEngine load it as any recognizer checkpoint), the description under ``meta['tsmnet']``::

      {'architecture': {'backbone': {...}, 'cls_head': {...}},  # tsmnet.models.architecture
       'class_names': [...] or None, 'protocol': {...} or None,  # TestProtocol's fields
       'model': 'zoo name' or None, 'version': '0.x'}

- a folder with ``model.safetensors`` (the same state dict) and ``config.json`` (the same
  keys, ``architecture``, ``class_names`` and ``protocol`` being the arguments of
  ``Recognizer(...)``, so Hugging Face's ``PyTorchModelHubMixin`` reads it too).

Checkpoints that ``tsmnet finetune`` wrote before (``meta['tsmnet']['architecture']`` holding
only the changes to ``meta['model']``, a zoo entry) are read as the same description. This
module reads and writes data; it builds no model (:mod:`tsmnet.models.saving` does).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from .._version import __version__
from ..fileio import atomic_write, write_text
from ..video import TestProtocol
from .checkpoint import read_checkpoint
from .zoo import ENTRIES

__all__ = ['CONFIG_FILE', 'WEIGHTS_FILE', 'SavedModelInfo', 'info_from_meta', 'protocol_from_dict',
           'protocol_to_dict', 'read_folder', 'read_saved', 'saved_meta', 'write_folder']

WEIGHTS_FILE = 'model.safetensors'
CONFIG_FILE = 'config.json'
_LEGACY_CHANGES = frozenset({'depth', 'is_shift', 'shift_mode'})  # what old finetune meta held


def protocol_to_dict(protocol: TestProtocol) -> dict[str, Any]:
    """The fields of ``protocol`` as plain data (tuples as lists, for JSON too)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(protocol).items()}


def protocol_from_dict(data: Mapping[str, Any], base: TestProtocol | None = None
                       ) -> TestProtocol:
    """A :class:`TestProtocol` from some or all of its fields (the others: ``base``'s, else the
    defaults).

    Raises:
        ValueError: A key that is not a field (named), or a bad value (TestProtocol's check).
    """
    names = {f.name for f in fields(TestProtocol)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f'protocol: unknown fields {unknown}; expected some of {sorted(names)}')
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return replace(base, **values) if base is not None else TestProtocol(**values)


@dataclass
class SavedModelInfo:
    """What a checkpoint says about its model.

    Attributes:
        source: The file or folder it was read from (for messages).
        architecture: The description (:mod:`tsmnet.models.architecture`), None when the
            checkpoint carries none (a release or a bare state dict).
        class_names: Names in the index order of the scores, or None.
        protocol: The test protocol, or None.
        model: The zoo entry it started from, or None.
        num_classes: Rows of the state dict's ``cls_head.fc_cls.weight`` (None: no head).
        meta: The checkpoint's whole ``meta`` (the folder form: its ``config.json``).
    """

    source: str
    architecture: dict[str, Any] | None = None
    class_names: list[str] | None = None
    protocol: TestProtocol | None = None
    model: str | None = None
    num_classes: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def saved_meta(architecture: Mapping[str, Any], class_names: list[str] | None = None,
               protocol: TestProtocol | None = None, model: str | None = None
               ) -> dict[str, Any]:
    """The ``meta['tsmnet']`` block (and ``config.json``) of a model."""
    return {'architecture': dict(architecture),
            'class_names': None if class_names is None else list(class_names),
            'protocol': None if protocol is None else protocol_to_dict(protocol),
            'model': model, 'version': __version__}


def _head_rows(state_dict: Mapping[str, Any]) -> int | None:
    weight = state_dict.get('cls_head.fc_cls.weight')
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.dim() == 2 \
        else None


def _names(value: Any) -> list[str] | None:
    return [str(n) for n in value] if isinstance(value, (list, tuple)) and value else None


def _legacy_architecture(changes: Mapping[str, Any], meta: Mapping[str, Any],
                         source: str) -> dict[str, Any]:
    """The description of an older ``tsmnet finetune`` checkpoint: its zoo entry
    (``meta['model']``) with the changes it lists (``depth``, ``is_shift``, ``shift_mode``)."""
    name = meta.get('model')
    entry = ENTRIES.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(f'checkpoint {source}: meta["tsmnet"]["architecture"] lists changes '
                         f'to a zoo model, but meta["model"] names none ({name!r})')
    unknown = sorted(set(changes) - _LEGACY_CHANGES)
    if unknown:
        raise ValueError(f'checkpoint {source}: unknown architecture changes {unknown}')
    architecture = entry.architecture
    architecture['backbone'].update(changes)
    if 'is_shift' in changes:
        architecture['cls_head']['is_shift'] = changes['is_shift']
    dropout = (meta.get('config') or {}).get('dropout')
    if dropout is not None:
        architecture['cls_head']['dropout_ratio'] = dropout
    return architecture


def info_from_meta(meta: Mapping[str, Any], state_dict: Mapping[str, Any],
                   source: str) -> SavedModelInfo:
    """:class:`SavedModelInfo` from a checkpoint's ``meta`` (or a folder's config) and its
    state dict.

    Raises:
        ValueError: ``meta['tsmnet']`` is there but not readable (what is wrong, named).
    """
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    # the folder form's config is the block itself
    block = meta['tsmnet'] if isinstance(meta.get('tsmnet'), Mapping) else \
        (meta if 'architecture' in meta else {})
    rows = _head_rows(state_dict)
    info = SavedModelInfo(source=source, meta=meta, num_classes=rows)
    model = block.get('model', meta.get('model'))
    info.model = model if isinstance(model, str) and model in ENTRIES else None
    info.class_names = (_names(block.get('class_names')) or _names(meta.get('classes'))
                        or _names((meta.get('dataset_meta') or {}).get('classes')))
    architecture = block.get('architecture')
    if isinstance(architecture, Mapping) and 'backbone' in architecture:
        info.architecture = copy.deepcopy(dict(architecture))
    elif isinstance(architecture, Mapping):  # an older finetune checkpoint: changes to a zoo one
        info.architecture = _legacy_architecture(architecture, {**meta, 'model': model}, source)
        if rows is not None:
            info.architecture['cls_head']['num_classes'] = rows
    protocol = block.get('protocol')
    if isinstance(protocol, Mapping) and protocol:
        base = None if set(protocol) >= {f.name for f in fields(TestProtocol)} or \
            info.model is None else ENTRIES[info.model].protocol
        try:
            info.protocol = protocol_from_dict(protocol, base)
        except (TypeError, ValueError) as err:
            raise ValueError(f'checkpoint {source}: bad protocol in its meta: {err}') from err
    if info.class_names is not None and rows is not None and len(info.class_names) != rows:
        info.class_names = None  # names of another head (e.g. the dataset's): not these
    return info


def read_folder(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and config of a saved-model folder (``model.safetensors`` and
    ``config.json``).

    Raises:
        FileNotFoundError: A file of the two is missing (named).
        ValueError: ``config.json`` is not a JSON object, or the weights cannot be read.
    """
    folder = Path(path)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f'{folder} is not a saved model: it has no {name} '
                                    f'(tsmnet.save(model, folder) writes {WEIGHTS_FILE} and '
                                    f'{CONFIG_FILE})')
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding='utf-8'))
    except (OSError, ValueError) as err:
        raise ValueError(f'cannot read {folder / CONFIG_FILE}: {err}') from err
    if not isinstance(config, dict):
        raise ValueError(f'{folder / CONFIG_FILE} must hold a JSON object, got '
                         f'{type(config).__name__}')
    return read_checkpoint(folder / WEIGHTS_FILE), config


def write_folder(path: str | Path, state_dict: Mapping[str, torch.Tensor],
                 config: Mapping[str, Any]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into the folder ``path`` (made if
    missing; each file written atomically). Tensors that share memory are saved once each.

    Returns:
        The folder.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    with atomic_write(folder / WEIGHTS_FILE) as f:
        f.write(save_safetensors(tensors, metadata={'format': 'pt'}))
    write_text(folder / CONFIG_FILE, json.dumps(dict(config), indent=1) + '\n')
    return folder


def read_saved(source: str | Path) -> tuple[dict[str, torch.Tensor], SavedModelInfo]:
    """The state dict and :class:`SavedModelInfo` of a checkpoint file, URL or folder.

    Raises:
        FileNotFoundError, UnsafeCheckpointError, ValueError: see
            :func:`tsmnet.weights.checkpoint.read_checkpoint` and :func:`read_folder`.
    """
    text = str(source)
    if '://' not in text and Path(text).is_dir():
        state_dict, config = read_folder(text)
        return state_dict, info_from_meta(config, state_dict, text)
    obj = read_checkpoint(text)
    meta: Any = {}
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        meta, obj = obj.get('meta') or {}, obj['state_dict']
    if not isinstance(obj, Mapping) or not obj or \
            not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'checkpoint {text} holds no state dict of tensors')
    state_dict = dict(obj)
    return state_dict, info_from_meta(meta if isinstance(meta, Mapping) else {}, state_dict,
                                      text)
