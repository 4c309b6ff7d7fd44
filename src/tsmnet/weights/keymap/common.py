"""Key mappings shared by every backbone: prefixes, wrapper segments, BatchNorm buffers.

Pure functions from state dict to state dict (or key to key): no file, no model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import torch

StateDict = dict[str, torch.Tensor]
MODULE_PREFIX = re.compile(r'^module\.')  # DataParallel / DistributedDataParallel


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """Remove ``prefix`` from the keys that start with it; other keys stay as they are."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def strip_data_parallel(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Remove the ``module.`` prefix that ``DataParallel``/``DDP`` give every key."""
    return {MODULE_PREFIX.sub('', k): v for k, v in state_dict.items()}


def fill_num_batches_tracked(state_dict: Mapping[str, torch.Tensor],
                             filled: list[str] | None = None) -> StateDict:
    """Add ``num_batches_tracked = 0`` beside every BN ``running_mean`` that lacks it.

    Files saved before PyTorch 0.4.1 (torchvision's original ImageNet weights, some timm and
    TSM files) or filtered by a script lack that buffer; PyTorch's BN itself fills it with 0
    for such files, and it only matters for ``momentum=None``.

    Args:
        state_dict: Any layout whose BN buffers end in ``.running_mean``.
        filled: A list to which the added keys are appended (for the load report). Defaults
            to None.
    """
    out = dict(state_dict)
    for key in state_dict:
        if key.endswith('.running_mean'):
            tracked = key[:-len('running_mean')] + 'num_batches_tracked'
            if tracked not in out:
                out[tracked] = torch.tensor(0, dtype=torch.long)
                if filled is not None:
                    filled.append(tracked)
    return out


def unwrap_key(key: str, wrap_names: Iterable[str]) -> str:
    """Drop the path segments that wrappers insert (``layer1.0.conv1.conv.net.weight`` ->
    ``layer1.0.conv1.conv.weight`` for ``wrap_names=('net',)``)."""
    names = set(wrap_names)
    return '.'.join(part for part in key.split('.') if part not in names)


def wrap_state_dict(state_dict: Mapping[str, torch.Tensor], model_keys: Iterable[str],
                    wrap_names: Iterable[str]) -> StateDict:
    """Give plain (unwrapped) keys the wrapper segments that ``model_keys`` have."""
    wrap_names = tuple(wrap_names)
    wrapped = {unwrap_key(k, wrap_names): k for k in model_keys}
    return {wrapped.get(k, k): v for k, v in state_dict.items()}


def rewrap_state_dict(state_dict: Mapping[str, torch.Tensor], model_keys: Iterable[str],
                      wrap_names: Iterable[str]) -> StateDict:
    """Give the keys of ``state_dict`` the wrapper segments of ``model_keys``, adding or
    removing them (a TSM file's ``layer1.0.conv1.conv.net.weight`` for a TSN's
    ``layer1.0.conv1.conv.weight``, and back).

    A key the model has stays; another key moves to the one model key with the same unwrapped
    form. Nothing is dropped or merged: a key with no such model key, or one of several file
    keys that would land on the same model key, stays as it is, for a strict load to report.
    """
    wrap_names = tuple(wrap_names)
    own = set(model_keys)
    by_plain: dict[str, list[str]] = {}
    for key in own:
        by_plain.setdefault(unwrap_key(key, wrap_names), []).append(key)
    target: dict[str, str] = {}
    for key in state_dict:
        found = by_plain.get(unwrap_key(key, wrap_names), [])
        target[key] = key if key in own or len(found) != 1 else found[0]
    landed = Counter(target.values())
    return {(target[k] if landed[target[k]] == 1 else k): v for k, v in state_dict.items()}
