"""Loading 2D and native checkpoints into tsmnet backbones, safely and completely.

Key conversion is done by pure functions from state dict to state dict; loading is strict:
every key a plain ResNet has must be filled, and every key of the file must be used, or the
load fails naming the keys. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.logging import print_log
from torch import nn

from .keymap import (
    CONV1_KEY,
    StateDict,
    detect_format,
    fill_num_batches_tracked,
    infer_arch,
    inflate_in_channels,
    rewrap_state_dict,
    split_recognizer,
    strip_data_parallel,
    timm_to_resnet,
    torchvision_to_resnet,
    tsm_to_mmaction,
    unwrap_key,
    wrap_state_dict,
)
from .keymap import mobilenet_v2 as mobilenet_v2_keymap
from .safe_globals import register_safe_globals

__all__ = ['CheckpointMismatchError', 'LoadReport', 'UnsafeCheckpointError', 'load_pretrained',
           'load_state_dict_checked', 'match_state_dict', 'read_checkpoint', 'read_state_dict',
           'rewrap_state_dict', 'torchvision_to_resnet', 'unwrap_key', 'wrap_state_dict']


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: the message names the file and the keys."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint needs globals that ``weights_only=True`` refuses: loading it could run
    code. The message names the file and the refused global."""


def wrap_names_of(model: nn.Module) -> tuple[str, ...]:
    """Wrapper segment names of a model, from its ``_get_wrap_prefix()`` (``'.net'`` style)."""
    get = getattr(model, '_get_wrap_prefix', None)
    return tuple(p.lstrip('.') for p in get()) if get is not None else ()


def unwrapped_keys(model: nn.Module, conv_modules: Collection[str] | None = None) -> set[str]:
    """The model's state-dict keys with the wrapper segments removed; with ``conv_modules``,
    only the keys of the ``ConvModule`` s named (``conv1`` holds ``conv1.conv.weight``,
    ``conv1.bn.running_mean`` ...)."""
    wrap_names = wrap_names_of(model)
    keys = {unwrap_key(k, wrap_names) for k in model.state_dict()}
    if conv_modules is None:
        return keys
    return {k for k in keys if k.rsplit('.', 2)[0] in conv_modules}


@dataclass
class LoadReport:
    """What a load matched: keys converted, and those missing, unexpected or mis-shaped."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    new_modules: list[str] = field(default_factory=list)  # keys a 2D ResNet has no weight for
    skipped: list[str] = field(default_factory=list)  # unbuilt stages, recognizer head keys
    inflated: list[str] = field(default_factory=list)  # stem conv fitted to in_channels
    filled: list[str] = field(default_factory=list)  # num_batches_tracked the file lacked
    rewrapped: list[str] = field(default_factory=list)  # keys given or freed of wrapper segments
    source_format: str = ''  # the layout the file was read as (convert.detect_format)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self) -> str:
        lines = [f'{len(self.loaded)} keys loaded']
        if self.source_format:
            lines[0] += f' ({self.source_format} layout)'
        if self.inflated:
            lines.append(f'input channels of {_short(self.inflated)} inflated (RGB filters '
                         f'averaged and repeated, as TSN does)')
        if self.filled:
            lines.append(f'{len(self.filled)} num_batches_tracked buffers the file lacks '
                         f'(saved before PyTorch 0.4.1) filled with 0')
        if self.rewrapped:
            lines.append(f'{len(self.rewrapped)} keys matched across wrapper segments (a '
                         f'shifted checkpoint into an unshifted model, or back): '
                         f'{_short(self.rewrapped)}')
        if self.new_modules:
            lines.append(f'{len(self.new_modules)} keys of modules a 2D ResNet lacks keep their '
                         f'initialisation: {_short(self.new_modules)}')
        if self.skipped:
            lines.append(f'{len(self.skipped)} keys not part of this backbone skipped: '
                         f'{_short(self.skipped)}')
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


def _is_safetensors(path: Path) -> bool:
    """A safetensors file: by its suffix, or by its header (8-byte length, then JSON)."""
    if path.suffix == '.safetensors':
        return True
    with path.open('rb') as f:
        head = f.read(9)
    return (len(head) == 9 and head[8:9] == b'{'
            and int.from_bytes(head[:8], 'little') < path.stat().st_size)


def read_checkpoint(source: str | Path) -> Any:
    """Read a whole checkpoint file safely.

    ``.pth``/``.pt`` files (zip or legacy) are read with ``torch.load(weights_only=True)``
    and the allow-list of :mod:`tsmnet.weights.safe_globals` (MMEngine runner checkpoints);
    ``.safetensors`` files with the ``safetensors`` package. A URL goes through MMEngine's
    ``CheckpointLoader``.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        UnsafeCheckpointError: Unpickling would need a global that is not allowed (a pickle
            that could run code); nothing of it runs.
        ValueError: The file is truncated, corrupt or not a checkpoint.
    """
    path = str(source)
    if '://' in path:
        from mmengine.runner.checkpoint import CheckpointLoader

        register_safe_globals()
        return CheckpointLoader.load_checkpoint(path, map_location='cpu')
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    if _is_safetensors(file):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device='cpu')
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f'cannot read checkpoint {path}: it is truncated or not a '
                             f'safetensors file ({err})') from err
    register_safe_globals()
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle, zip and unsafe-type errors alike
        message = str(err)
        # "Unsupported operand": not a pickle at all (text, an image...), nothing unsafe
        if 'Weights only load failed' in message and 'Unsupported operand' not in message:
            raise UnsafeCheckpointError(
                f'refused to load checkpoint {path}: {_refusal(message)}; '
                f'torch.load(weights_only=True) builds tensors, plain containers and '
                f'allow-listed types only, and unpickling this file could run code. Only if '
                f'you trust its origin, load it with weights_only=False and save its '
                f'state_dict.') from err
        detail = _refusal(message) if 'Weights only load failed' in message else message
        raise ValueError(f'cannot read checkpoint {path}: it is truncated, corrupt or not a '
                         f'PyTorch checkpoint ({type(err).__name__}: {detail})') from err


def _refusal(message: str) -> str:
    """What torch's weights-only unpickler refused, from its error message."""
    found = re.search(r'GLOBAL (\S+) was not an allowed global', message)
    if found:
        return f'it needs {found.group(1)}, which is not an allowed global'
    found = re.search(r'WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)', message, re.S)
    return found.group(1).strip() if found else message.splitlines()[0]


def read_state_dict(source: str | Path) -> StateDict:
    """Read a checkpoint file (or MMEngine-style URL) as a flat state dict of tensors.

    Files are read by :func:`read_checkpoint`; a ``{'state_dict': ...}`` (MMEngine, the
    original TSM release) or ``{'model': ...}`` wrapper is unwrapped.

    Raises:
        ValueError: The file holds no state dict of tensors (and the errors of
            :func:`read_checkpoint`).
    """
    obj = read_checkpoint(source)
    for wrapper in ('state_dict', 'model'):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not obj or \
            not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'checkpoint {source} holds no state dict of tensors')
    return dict(obj)


def _plain_2d_keys(model: nn.Module) -> set[str]:
    """Keys (unwrapped) that a 2D checkpoint can fill in ``model``: the model's own answer
    (``plain_2d_keys()``, e.g. :meth:`tsmnet.ResNet.plain_2d_keys`; any backbone family can
    give one without this module importing it), else all its keys with the wrapper segments
    removed."""
    get = getattr(model, 'plain_2d_keys', None)
    return set(get()) if get is not None else unwrapped_keys(model)



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
    plain_keys = _plain_2d_keys(model) if pretrained_2d else set(own)
    usable: StateDict = {}
    for key, value in state_dict.items():
        if key not in own:
            stage = re.match(r'^layer(\d+)\.', key)
            if pretrained_2d and stage and int(stage.group(1)) > getattr(model, 'num_stages', 99):
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
        if not pretrained_2d or unwrap_key(key, wrap_names) in plain_keys:
            report.missing.append(key)
        else:
            report.new_modules.append(key)
    return usable, report


def _mismatch_hint(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                   report: LoadReport) -> str:
    """A sentence on why nothing fits, when the file is plainly another network."""
    depth = infer_arch(state_dict)['depth']
    if depth is None:
        return '' if report.loaded else ' It does not look like a checkpoint of this ResNet.'
    if depth != getattr(model, 'depth', depth):
        return f' The checkpoint holds a ResNet-{depth}, the model is a ResNet-{model.depth}.'
    return ''


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                            pretrained_2d: bool = False, strict: bool = True,
                            source: str = 'state dict',
                            report: LoadReport | None = None) -> LoadReport:
    """Load ``state_dict`` into ``model``; with ``strict``, refuse any partial load.

    Args:
        model: A tsmnet ResNet or ResNetTSM.
        state_dict: Keys of the model.
        pretrained_2d: ``state_dict`` is a plain 2D ResNet: model keys it cannot have
            (non-local blocks) keep their initialisation, stages the model lacks are skipped.
        strict: Refuse a partial load. Defaults to True.
        source: The name used in messages (the file). Defaults to ``'state dict'``.
        report: A report to complete (skipped or inflated keys found before). Defaults to
            None, a new one.

    Raises:
        CheckpointMismatchError: With ``strict``, when keys are missing, unexpected or of
            another shape; nothing is loaded then.
    """
    usable, found = match_state_dict(model, state_dict, pretrained_2d)
    if report is not None:
        for name in ('loaded', 'missing', 'unexpected', 'mismatched', 'new_modules', 'skipped'):
            getattr(report, name).extend(getattr(found, name))
        found = report
    if strict and not found.complete:
        raise CheckpointMismatchError(f'checkpoint {source} does not fit '
                                      f'{type(model).__name__}: {found.describe()}.'
                                      f'{_mismatch_hint(model, state_dict, found)}')
    model.load_state_dict(usable, strict=False)
    level = logging.INFO if found.complete else logging.WARNING
    print_log(f'loaded {source}: {found.describe()}', logger='current', level=level)
    return found


def to_backbone_keys(state_dict: Mapping[str, torch.Tensor], model: nn.Module,
                     report: LoadReport) -> tuple[StateDict, bool]:
    """Convert a state dict of any known layout to ``model``'s own keys.

    Returns:
        The converted state dict, and whether it came from a 2D ImageNet ResNet (whose
        missing non-local weights are expected). Recognizer keys outside the backbone
        (``cls_head.``...) are listed in ``report.skipped``, ``num_batches_tracked``
        buffers the file lacks (every layout) are filled with 0 and listed in
        ``report.filled``.
    """
    mobile = mobilenet_v2_keymap.detect_layout(state_dict)
    if mobile is not None and hasattr(model, 'widen_factor'):
        return _mobilenet_v2_backbone_keys(state_dict, model, report, mobile)
    fmt = detect_format(state_dict)
    report.source_format = fmt
    if fmt == 'torchvision':
        # timm's plain ResNets share torchvision's keys
        converted = timm_to_resnet(state_dict, fill_tracked=False)
        report.skipped.extend(k for k in state_dict if re.match(r'^(module\.)?fc\.', k))
        stem = converted.get(CONV1_KEY)
        if stem is not None and stem.dim() == 4 and stem.shape[1] != model.in_channels:
            converted = inflate_in_channels(converted, model.in_channels)
            report.inflated.append(CONV1_KEY)
        converted = wrap_state_dict(converted, model.state_dict(), wrap_names_of(model))
        return fill_num_batches_tracked(converted, report.filled), True
    if fmt in ('tsm', 'mmaction'):
        recognizer = tsm_to_mmaction(state_dict, fill_tracked=False) if fmt == 'tsm' else \
            strip_data_parallel(state_dict)
        backbone, rest = split_recognizer(recognizer)
        report.skipped.extend(rest)
        return _rewrapped(fill_num_batches_tracked(backbone, report.filled), model, report), False
    own = fill_num_batches_tracked(strip_data_parallel(state_dict), report.filled)
    return _rewrapped(own, model, report), False


def _rewrapped(state_dict: StateDict, model: nn.Module, report: LoadReport) -> StateDict:
    """``state_dict`` with its keys given or freed of ``model``'s wrapper segments (a TSM file
    into an ``is_shift=False`` backbone, and back), listed in ``report.rewrapped``."""
    fitted = rewrap_state_dict(state_dict, model.state_dict(), wrap_names_of(model))
    report.rewrapped.extend(new for new, old in zip(fitted, state_dict) if new != old)
    return fitted


def _mobilenet_v2_backbone_keys(state_dict: Mapping[str, torch.Tensor], model: nn.Module,
                                report: LoadReport, layout: str) -> tuple[StateDict, bool]:
    """:func:`to_backbone_keys` for a MobileNetV2 file of ``layout``
    (:func:`tsmnet.weights.keymap.mobilenet_v2.detect_layout`)."""
    keymap = mobilenet_v2_keymap
    report.source_format = f'MobileNetV2 {layout}'
    if layout == 'torchvision':
        backbone = keymap.torchvision_to_mobilenet_v2(state_dict)
        report.skipped.extend(k for k in state_dict if re.match(r'^(module\.)?classifier\.', k))
    elif layout in ('mmpretrain', 'tsmnet'):  # MMEngine's mmcls:// loader gives bare keys
        backbone = keymap.mmpretrain_to_mobilenet_v2(state_dict)
        report.skipped.extend(k for k in state_dict if re.match(r'^(module\.)?head\.', k))
    else:  # a video checkpoint: the recognizer's backbone keys
        recognizer = (keymap.tsm_online_to_mmaction(state_dict) if layout == 'tsm-online'
                      else strip_data_parallel(state_dict))
        backbone, rest = split_recognizer(recognizer)
        report.skipped.extend(rest)
        return fill_num_batches_tracked(backbone, report.filled), False
    backbone = fill_num_batches_tracked(backbone, report.filled)
    if keymap.is_shifted(backbone):
        return backbone, False
    return wrap_state_dict(backbone, model.state_dict(), wrap_names_of(model)), True


def load_pretrained(model: nn.Module, source: str | Path, *, torchvision: bool,
                    strict: bool = True) -> LoadReport:
    """Load a checkpoint file into a tsmnet ResNet(TSM) or MobileNetV2(TSM).

    The layout is read off the keys (:func:`tsmnet.weights.keymap.detect_format`): a torchvision or
    timm ImageNet ResNet (converted, classifier dropped, wrapper segments added, the stem
    conv inflated when ``in_channels != 3``), an original TSM release checkpoint
    (converted), an MMAction2 recognizer checkpoint (its ``backbone.`` keys; the head is
    skipped and reported) or bare tsmnet backbone keys; the keys of those last three follow
    the model's wrappers (a TSM file loads into an ``is_shift=False`` backbone and back). A
    MobileNetV2(TSM) reads torchvision's, MMPretrain's, the TSM online demo's and MMAction2's
    MobileNetV2 layouts
    (:mod:`tsmnet.weights.keymap.mobilenet_v2`).

    Args:
        model: The backbone.
        source: A checkpoint path (``.pth``, ``.safetensors``) or a URL MMEngine can fetch.
        torchvision: The caller expects a 2D ImageNet checkpoint (``pretrained2d``); a file
            of another layout is still loaded, with a warning.
        strict: Refuse a partial load. Defaults to True.

    Raises:
        FileNotFoundError, UnsafeCheckpointError, ValueError: See :func:`read_checkpoint`.
        CheckpointMismatchError: With ``strict``, the file does not fill the model exactly.
    """
    state_dict = read_state_dict(source)
    report = LoadReport()
    converted, pretrained_2d = to_backbone_keys(state_dict, model, report)
    if torchvision != pretrained_2d and report.source_format != 'unknown':
        expected = '2D ImageNet' if torchvision else 'video (native key)'
        print_log(f'{source}: expected a {expected} checkpoint, found the '
                  f'{report.source_format} layout; loading it as such', logger='current',
                  level=logging.WARNING)
    return load_state_dict_checked(model, converted, pretrained_2d=pretrained_2d,
                                   strict=strict, source=str(source), report=report)
