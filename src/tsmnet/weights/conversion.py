"""The conversion behind ``tsmnet convert``: a torchvision, timm, original-TSM or MMAction2
checkpoint (ResNet, or MobileNetV2 from torchvision, MMPretrain or the TSM online demo)
becomes one that MMAction2 and tsmnet load directly.

The output is MMAction2's recognizer layout, ``{'state_dict': {'backbone.…': …,
'cls_head.fc_cls.…': …}, 'meta': {...}}``: MMAction2 loads it with ``load_from`` or
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``, tsmnet with
``ResNetTSM(..., pretrained=DST)``. Every converted key is checked against a tsmnet
``ResNetTSM`` (or ``MobileNetV2TSM``, of the width read off the keys) of the architecture the
file holds.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from ..archs import RESNET_DEPTHS
from ..fileio import save_torch
from ..models import MobileNetV2TSM, ResNetTSM
from ..models.mobilenet_v2 import widen_factor_for
from .checkpoint import (
    LoadReport,
    match_state_dict,
    read_state_dict,
    to_backbone_keys,
    wrap_names_of,
)
from .keymap import (
    BACKBONE_PREFIX,
    CONV1_KEY,
    CONVERTERS,
    HEAD_PREFIX,
    SOURCE_FORMATS,
    detect_format,
    fill_num_batches_tracked,
    infer_arch,
    inflate_in_channels,
    split_recognizer,
    wrap_state_dict,
)
from .keymap import mobilenet_v2 as mobilenet_v2_keymap

__all__ = ['MOBILENET_V2_FORMATS', 'NON_LOCAL_CFG', 'Conversion', 'MobileNetV2Conversion',
           'convert_checkpoint', 'convert_mobilenet_v2', 'save_conversion']

NON_LOCAL_CFG: dict[str, Any] = dict(  # MMAction2's TSM non-local configs
    sub_sample=True, use_scale=False, norm_cfg=dict(type='BN3d', requires_grad=True),
    mode='embedded_gaussian')


@dataclass
class Conversion:
    """What a conversion did: the keys to write and the account of them."""

    state_dict: dict[str, Any]
    arch: dict[str, Any]
    report: LoadReport  # of the backbone
    head_keys: list[str] = field(default_factory=list)
    head_mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # outside backbone and head

    @property
    def complete(self) -> bool:
        return self.report.complete and not (self.head_mismatched or self.unexpected)

    def arch_line(self) -> str:
        """The architecture, in one line."""
        a = self.arch
        shift = f"shift_place={a['shift_place']}" if a['is_shift'] else 'no shift'
        return (f"architecture: ResNet-{a['depth']}, {shift}, temporal_pool={a['temporal_pool']}, "
                f"non-local blocks={sum(map(sum, a['non_local']))}, in_channels={a['in_channels']}")

    def summary(self) -> str:
        """A few lines for people: architecture, and converted, filled, missing, unexpected
        and shape-mismatched keys."""
        r = self.report
        lines = [self.arch_line(),
                 f'converted: {len(r.loaded)} backbone keys, {len(self.head_keys)} head keys']
        if r.filled:
            lines.append(f'filled with 0 (num_batches_tracked the file lacks): {len(r.filled)}')
        lines += [
            f'missing: {len(r.missing)}{_list(r.missing)}',
            f'unexpected: {len(r.unexpected) + len(self.unexpected)}'
            f'{_list(r.unexpected + self.unexpected)}',
        ]
        mismatched = r.mismatched + self.head_mismatched
        lines.append(f'shape-mismatched: {len(mismatched)}' + ''.join(
            f'\n  {k}: checkpoint {tuple(s)}, model {tuple(m)}' for k, s, m in mismatched))
        if r.inflated:
            lines.append(f'inflated to {self.arch["in_channels"]} input channels: '
                         f'{", ".join(r.inflated)}')
        return '\n'.join(lines)


def _list(keys: list[str]) -> str:
    return ''.join(f'\n  {k}' for k in keys)


def _build_backbone(arch: dict[str, Any]) -> ResNetTSM:
    has_nl = any(map(any, arch['non_local']))
    nl_cfg = dict(NON_LOCAL_CFG, sub_sample=arch['non_local_sub_sample']) if has_nl else None
    return ResNetTSM(arch['depth'], num_segments=8, is_shift=arch['is_shift'],
                     shift_place=arch['shift_place'], temporal_pool=arch['temporal_pool'],
                     non_local=arch['non_local'], non_local_cfg=nl_cfg,
                     in_channels=arch['in_channels'], num_stages=arch['num_stages'],
                     out_indices=(arch['num_stages'] - 1,),
                     strides=(1, 2, 2, 2)[:arch['num_stages']],
                     dilations=(1, 1, 1, 1)[:arch['num_stages']])


def convert_checkpoint(src: str | Path, source_format: str, *, depth: int | None = None,
                       in_channels: int | None = None, shift_place: str = 'blockres',
                       is_shift: bool = True, temporal_pool: bool = False) -> Conversion:
    """Read ``src`` and convert it to MMAction2 recognizer keys, checked against tsmnet.

    BatchNorm ``num_batches_tracked`` buffers that the file lacks (PyTorch < 0.4.1, or
    filtered out) are filled with 0 in every layout and listed in ``report.filled``.

    Args:
        src: The checkpoint file (``.pth``/``.safetensors``).
        source_format: ``'torchvision'``, ``'timm'``, ``'tsm'``, ``'mmaction'`` or (MobileNetV2
            only) ``'mmpretrain'``. A MobileNetV2 file goes to :func:`convert_mobilenet_v2`.
        depth: The ResNet depth the file must hold. Defaults to None, read off the keys.
        in_channels: Input channels of the result; the stem conv is inflated (TSN) when the
            file has another number. Defaults to None, the file's.
        shift_place, is_shift, temporal_pool: The TSM structure to write 2D (torchvision,
            timm) weights for; video checkpoints carry their own. Defaults: ``'blockres'``,
            True, False.

    Returns:
        The converted keys and their account; see :attr:`Conversion.complete`.

    Raises:
        FileNotFoundError, UnsafeCheckpointError: See
            :func:`tsmnet.weights.checkpoint.read_checkpoint`.
        ValueError: Unknown format, or a file of another layout or architecture.
    """
    formats = SOURCE_FORMATS + MOBILENET_V2_FORMATS
    if source_format not in formats:
        raise ValueError(f'source_format must be one of {formats}, got {source_format!r}')
    if depth is not None and depth not in RESNET_DEPTHS:
        raise ValueError(f'depth must be one of {list(RESNET_DEPTHS)}, got {depth!r}')
    raw = read_state_dict(src)
    if source_format in MOBILENET_V2_FORMATS or mobilenet_v2_keymap.detect_layout(raw):
        return convert_mobilenet_v2(src, raw, source_format, is_shift=is_shift)
    found = detect_format(raw)
    expected = 'torchvision' if source_format in ('torchvision', 'timm') else source_format
    if found != expected:
        raise ValueError(f'{src} is not a {source_format} checkpoint: its keys look like the '
                         f'{found} layout (e.g. {next(iter(raw))!r})')
    converted = CONVERTERS[source_format](raw, fill_tracked=False)
    if expected == 'torchvision':
        backbone, rest = converted, {}
        arch = infer_arch(backbone)
        arch.update(is_shift=is_shift, shift_place=shift_place, temporal_pool=temporal_pool)
    else:
        backbone, rest = split_recognizer(converted)
        arch = infer_arch(backbone)
    if arch['depth'] is None:
        raise ValueError(f'{src}: its block counts match no ResNet depth '
                         f'({"/".join(map(str, RESNET_DEPTHS))})')
    if depth is not None and depth != arch['depth']:
        raise ValueError(f'{src} holds a ResNet-{arch["depth"]}, not the ResNet-{depth} that '
                         f'--depth asks for')
    inflated = []
    if in_channels is not None and arch['in_channels'] not in (None, in_channels):
        backbone = inflate_in_channels(backbone, in_channels)
        inflated.append(CONV1_KEY)
        arch['in_channels'] = in_channels
    if arch['in_channels'] is None:
        arch['in_channels'] = 3 if in_channels is None else in_channels
    model = _build_backbone(arch)
    if expected == 'torchvision':
        backbone = wrap_state_dict(backbone, model.state_dict(), wrap_names_of(model))
    filled: list[str] = []
    backbone = fill_num_batches_tracked(backbone, filled)
    usable, report = match_state_dict(model, backbone, pretrained_2d=False)
    report.inflated = inflated
    report.filled = filled
    report.source_format = source_format
    conversion = Conversion(state_dict={}, arch=arch, report=report)
    head: dict[str, Any] = {}
    for key, value in rest.items():
        if not key.startswith(HEAD_PREFIX):
            conversion.unexpected.append(key)
            continue
        if key == f'{HEAD_PREFIX}fc_cls.weight' and value.shape[-1] != model.feat_dim:
            conversion.head_mismatched.append((key, tuple(value.shape),
                                               (value.shape[0], model.feat_dim)))
            continue
        head[key] = value
    conversion.head_keys = sorted(head)
    conversion.state_dict = {BACKBONE_PREFIX + k: v for k, v in usable.items()}
    conversion.state_dict.update(head)
    return conversion


#: Layouts ``--from`` names for MobileNetV2 files beyond the ResNet ones.
MOBILENET_V2_FORMATS: tuple[str, ...] = ('mmpretrain',)
# source format -> the layouts of tsmnet.weights.keymap.mobilenet_v2.detect_layout it accepts
_MOBILENET_V2_LAYOUTS: dict[str, tuple[str, ...]] = {
    'torchvision': ('torchvision',), 'mmpretrain': ('mmpretrain', 'tsmnet'),
    'tsm': ('tsm-online',), 'mmaction': ('mmaction',), 'timm': ()}


class MobileNetV2Conversion(Conversion):
    """A :class:`Conversion` of MobileNetV2 weights (its architecture is a width)."""

    def arch_line(self) -> str:
        a = self.arch
        shift = (f"{a['shift_mode']} shift, 10 sites at width 1.0" if a['is_shift']
                 else 'no shift')
        return f"architecture: MobileNetV2 (widen_factor={a['widen_factor']}), {shift}"


def convert_mobilenet_v2(src: str | Path, raw: dict[str, Any], source_format: str, *,
                         is_shift: bool = True) -> MobileNetV2Conversion:
    """:func:`convert_checkpoint` for MobileNetV2 files, checked against a tsmnet
    ``MobileNetV2TSM`` of the width read off the keys.

    Args:
        src: The file (for messages).
        raw: Its state dict.
        source_format: ``'torchvision'``, ``'mmpretrain'``, ``'tsm'`` (the TSM online demo;
            its shift is causal) or ``'mmaction'``.
        is_shift: The structure to write 2D weights for. Defaults to True.

    Raises:
        ValueError: A file of another layout, or a width no MobileNetV2 has.
    """
    layout = mobilenet_v2_keymap.detect_layout(raw)
    if layout not in _MOBILENET_V2_LAYOUTS[source_format]:
        raise ValueError(f'{src} is not a {source_format} MobileNetV2 checkpoint: its keys look '
                         f'like the {layout or "unknown"} layout (e.g. {next(iter(raw))!r})')
    probe = MobileNetV2TSM(is_shift=False)  # reads the keys without a width yet
    backbone, _ = to_backbone_keys(raw, probe, LoadReport())
    channels = mobilenet_v2_keymap.stage_channels(
        {k.replace('.net.', '.'): v for k, v in backbone.items()})
    width = None if channels is None else widen_factor_for(channels)
    if width is None:
        raise ValueError(f'{src}: its channels {channels} match no MobileNetV2 width')
    video = layout in ('tsm-online', 'mmaction')
    shifted = mobilenet_v2_keymap.is_shifted(backbone) if video else is_shift
    arch = dict(arch='MobileNetV2', widen_factor=width, is_shift=shifted,
                shift_mode='causal' if layout == 'tsm-online' else 'bidirectional',
                in_channels=3)
    model = MobileNetV2TSM(widen_factor=width, is_shift=shifted, shift_mode=arch['shift_mode'])
    report = LoadReport()
    backbone, _ = to_backbone_keys(raw, model, report)
    usable, found = match_state_dict(model, backbone, pretrained_2d=False)
    found.source_format = report.source_format
    found.filled = report.filled
    conversion = MobileNetV2Conversion(state_dict={}, arch=arch, report=found)
    head = {}
    if video:
        recognizer = (mobilenet_v2_keymap.tsm_online_to_mmaction(raw) if layout == 'tsm-online'
                      else raw)
        for key, value in recognizer.items():
            if key.startswith(HEAD_PREFIX):
                head[key] = value
            elif not key.startswith(BACKBONE_PREFIX):
                conversion.unexpected.append(key)
    conversion.head_keys = sorted(head)
    conversion.state_dict = {BACKBONE_PREFIX + k: v for k, v in usable.items()}
    conversion.state_dict.update(head)
    return conversion


def save_conversion(conversion: Conversion, dst: str | Path, src: str | Path,
                    source_format: str) -> None:
    """Write ``{'state_dict': ..., 'meta': ...}`` as MMAction2 checkpoints are, atomically
    (:func:`tsmnet.fileio.save_torch`: a failed write leaves a previous ``dst`` intact).

    Raises:
        tsmnet.fileio.WriteError: The file could not be written.
    """
    arch = dict(conversion.arch)
    meta = dict(tsmnet_version=__version__, converted_from=str(src),
                source_format=source_format, complete=conversion.complete,
                arch={k: (list(map(list, v)) if k == 'non_local' else v)
                      for k, v in arch.items()})
    save_torch({'state_dict': OrderedDict(conversion.state_dict), 'meta': meta}, dst)
