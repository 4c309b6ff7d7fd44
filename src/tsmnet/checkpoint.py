"""Loading 2D and native checkpoints into tsmnet backbones, safely and completely.

Key conversion is done by pure functions from state dict to state dict; loading is strict:
every key a plain ResNet has must be filled, and every key of the file must be used, or the
load fails naming the keys. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from mmengine.logging import print_log
from torch import nn

StateDict = dict[str, torch.Tensor]

# torchvision names -> MMAction2 ResNet names (every conv is a ConvModule: .conv and .bn)
_TORCHVISION_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl) for pattern, repl in (
        (r'^conv1\.(weight|bias)$', r'conv1.conv.\1'),
        (r'^bn1\.(.+)$', r'conv1.bn.\1'),
        (r'^(layer\d+\.\d+)\.conv(\d)\.(weight|bias)$', r'\1.conv\2.conv.\3'),
        (r'^(layer\d+\.\d+)\.bn(\d)\.(.+)$', r'\1.conv\2.bn.\3'),
        (r'^(layer\d+\.\d+)\.downsample\.0\.(weight|bias)$', r'\1.downsample.conv.\2'),
        (r'^(layer\d+\.\d+)\.downsample\.1\.(.+)$', r'\1.downsample.bn.\2'),
    ))
_CLASSIFIER = re.compile(r'^fc\.(weight|bias)$')


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: the message names the keys."""


def torchvision_to_resnet(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename torchvision ResNet keys to MMAction2/tsmnet ``ResNet`` keys.

    The classifier (``fc.*``) is dropped; a key that matches no rule is kept unchanged, so that
    the strict load reports it.
    """
    out: StateDict = {}
    for key, value in state_dict.items():
        if _CLASSIFIER.match(key):
            continue
        for pattern, repl in _TORCHVISION_RULES:
            if pattern.match(key):
                key = pattern.sub(repl, key)
                break
        out[key] = value
    return out


def unwrap_key(key: str, wrap_names: Iterable[str]) -> str:
    """Drop the path segments that wrappers insert (``layer1.0.conv1.conv.net.weight`` ->
    ``layer1.0.conv1.conv.weight`` for ``wrap_names=('net',)``)."""
    names = set(wrap_names)
    return '.'.join(part for part in key.split('.') if part not in names)


def wrap_state_dict(state_dict: Mapping[str, torch.Tensor], model_keys: Iterable[str],
                    wrap_names: Iterable[str]) -> StateDict:
    """Give plain ResNet keys the wrapper segments that ``model_keys`` have."""
    wrap_names = tuple(wrap_names)
    wrapped = {unwrap_key(k, wrap_names): k for k in model_keys}
    return {wrapped.get(k, k): v for k, v in state_dict.items()}


def wrap_names_of(model: nn.Module) -> tuple[str, ...]:
    """Wrapper segment names of a model, from its ``_get_wrap_prefix()`` (``'.net'`` style)."""
    get = getattr(model, '_get_wrap_prefix', None)
    return tuple(p.lstrip('.') for p in get()) if get is not None else ()


@dataclass
class LoadReport:
    """What a load matched: keys converted, and those missing, unexpected or mis-shaped."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    new_modules: list[str] = field(default_factory=list)  # keys a 2D ResNet has no weight for
    skipped: list[str] = field(default_factory=list)  # keys of stages the model does not build

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        lines = [f'{len(self.loaded)} keys loaded']
        if self.new_modules:
            lines.append(f'{len(self.new_modules)} keys of modules a 2D ResNet lacks keep their '
                         f'initialisation: {_short(self.new_modules)}')
        if self.skipped:
            lines.append(f'{len(self.skipped)} keys of unbuilt stages skipped: {_short(self.skipped)}')
        if self.missing:
            lines.append(f'missing keys: {_short(self.missing)}')
        if self.unexpected:
            lines.append(f'unexpected keys: {_short(self.unexpected)}')
        if self.mismatched:
            shown = ', '.join(f'{k} (checkpoint {tuple(a)}, model {tuple(b)})'
                              for k, a, b in self.mismatched[:10])
            lines.append(f'shape-mismatched keys: {shown}')
        return '; '.join(lines)


def _short(keys: list[str], limit: int = 10) -> str:
    more = f' and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def read_state_dict(source: str | Path) -> StateDict:
    """Read a checkpoint file (or MMEngine-style URL) as a flat state dict of tensors.

    Local files are read with ``weights_only=True``; a ``{'state_dict': ...}`` or
    ``{'model': ...}`` wrapper is unwrapped.
    """
    path = str(source)
    if '://' in path:
        from mmengine.runner.checkpoint import CheckpointLoader

        obj = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    else:
        if not Path(path).is_file():
            raise FileNotFoundError(f'checkpoint file not found: {path}')
        try:
            obj = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:  # pickle, zip and unsafe-type errors alike
            raise ValueError(f'cannot read checkpoint {path}: {err}') from err
    for wrapper in ('state_dict', 'model'):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'checkpoint {path} holds no state dict of tensors')
    return dict(obj)


def _plain_resnet_keys(model: nn.Module) -> set[str]:
    """Keys (unwrapped) that the plain 2D ResNet under ``model`` has."""
    from .resnet import ResNet

    plain = ResNet(model.depth, in_channels=model.in_channels, num_stages=model.num_stages,
                   out_indices=model.out_indices, strides=model.strides,
                   dilations=model.dilations, style=model.style, conv_cfg=model.conv_cfg,
                   norm_cfg=model.norm_cfg, act_cfg=model.act_cfg)
    return set(plain.state_dict())


def match_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                     pretrained_2d: bool) -> tuple[StateDict, LoadReport]:
    """Compare ``state_dict`` with the model's own: what loads, and what does not.

    With ``pretrained_2d``, model keys that a plain ResNet lacks (non-local blocks, modules
    of subclasses) may stay as initialised, and keys of stages beyond ``num_stages`` are
    skipped; every other difference is reported.
    """
    own = model.state_dict()
    wrap_names = wrap_names_of(model)
    report = LoadReport()
    plain_keys = _plain_resnet_keys(model) if pretrained_2d else set(own)
    usable: StateDict = {}
    for key, value in state_dict.items():
        if key not in own:
            stage = re.match(r'^layer(\d+)\.', key)
            if pretrained_2d and stage and int(stage.group(1)) > model.num_stages:
                report.skipped.append(key)
            else:
                report.unexpected.append(key)
        elif own[key].shape != value.shape:
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            usable[key] = value
            report.loaded.append(key)
    for key in own:
        if key in state_dict:
            continue
        if unwrap_key(key, wrap_names) in plain_keys:
            report.missing.append(key)
        else:
            report.new_modules.append(key)
    return usable, report


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                            pretrained_2d: bool = False, strict: bool = True,
                            source: str = 'state dict') -> LoadReport:
    """Load ``state_dict`` into ``model``; with ``strict``, refuse any partial load.

    Raises:
        CheckpointMismatchError: With ``strict``, when keys are missing, unexpected or of
            another shape; nothing is loaded then.
    """
    usable, report = match_state_dict(model, state_dict, pretrained_2d)
    if strict and not report.complete:
        raise CheckpointMismatchError(f'{source} does not fit {type(model).__name__}: '
                                      f'{report.describe()}')
    model.load_state_dict(usable, strict=False)
    print_log(f'loaded {source}: {report.describe()}', logger='current', level=logging.INFO)
    return report


def load_pretrained(model: nn.Module, source: str | Path, *, torchvision: bool,
                    strict: bool = True) -> LoadReport:
    """Load a checkpoint file into a tsmnet ResNet or ResNetTSM.

    Args:
        model: The backbone.
        source: A checkpoint path (or a URL MMEngine can fetch).
        torchvision: The file has torchvision ResNet keys (converted, classifier dropped,
            wrapper segments added); otherwise it has the model's own keys (a ``backbone.``
            prefix, as in MMAction2 recognizer checkpoints, is removed).
        strict: Refuse a partial load. Defaults to True.
    """
    state_dict = read_state_dict(source)
    if torchvision:
        state_dict = wrap_state_dict(torchvision_to_resnet(state_dict), model.state_dict(),
                                     wrap_names_of(model))
    elif state_dict and all(k.startswith('backbone.') for k in state_dict):
        state_dict = {k[len('backbone.'):]: v for k, v in state_dict.items()}
    return load_state_dict_checked(model, state_dict, pretrained_2d=torchvision, strict=strict,
                                   source=str(source))
