"""``tsmnet info``: what a model is. For a zoo name or a checkpoint (``tsmnet finetune``'s,
``tsmnet.save``'s): its architecture, classes, test protocol, published accuracy and
parameters; for a ResNetTSM (those, an MMAction2 config file, or the options below) also the
structure of the backbone, where its shifts sit and its FLOPs.

Examples::

    tsmnet info tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb
    tsmnet info ft/checkpoint.pth --json -
    tsmnet info configs/tsm/tsm_tsmnet-r50_8xb16-1x1x8-50e_kinetics400-rgb.py
    tsmnet info --depth 50 --num-segments 8
    tsmnet info --depth 50 --num-segments 8 --non-local embedded_gaussian --json

FLOPs are MMEngine's count (``mmengine.analysis.FlopAnalyzer``: one multiply-add is one FLOP,
as fvcore and the MMAction2 model zoo count) of the backbone on one clip,
``[T, 3, size, size]``; the shifts themselves cost none.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..archs import RESNET_ARCHS, RESNET_DEPTHS
from .errors import CommandParser, report
from .options import add_threads, set_threads, write_json

NON_LOCAL_MODES = ('dot_product', 'embedded_gaussian', 'gaussian')
BACKBONE_TYPES = ('ResNetTSM', 'tsmnet.ResNetTSM')
STAGE_BLOCKS = {depth: arch.stage_blocks for depth, arch in RESNET_ARCHS.items()}


def non_local_pattern(depth: int) -> tuple[tuple[int, ...], ...]:
    """MMAction2's TSM non-local placement: every other block of layer2 and layer3.

    For ResNet-50 this is the ``((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))`` of
    MMAction2's ``tsm_imagenet-pretrained-r50-nl-*`` configs.
    """
    return tuple(tuple(int(stage in (1, 2) and i % 2 == 0) for i in range(n))
                 for stage, n in enumerate(STAGE_BLOCKS[depth]))


def backbone_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        depth=args.depth, num_segments=args.num_segments, is_shift=not args.no_shift,
        shift_div=args.shift_div, shift_place=args.shift_place, shift_mode=args.shift_mode,
        temporal_pool=args.temporal_pool, pretrained=None)
    if args.non_local is not None:
        kwargs['non_local'] = non_local_pattern(args.depth)
        kwargs['non_local_cfg'] = dict(sub_sample=True, use_scale=False,
                                       norm_cfg=dict(type='BN3d', requires_grad=True),
                                       mode=args.non_local)
    return kwargs


def backbone_kwargs_from_config(path: str) -> dict[str, Any]:
    """The ``model.backbone`` arguments of an MMAction2 config (its ``custom_imports`` run).

    Raises:
        ValueError: If the config's backbone is not a ResNetTSM.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(path)
    backbone = cfg.get('model', {}).get('backbone')
    if backbone is None or backbone.get('type') not in BACKBONE_TYPES:
        found = None if backbone is None else backbone.get('type')
        raise ValueError(f'{path}: expected model.backbone.type in {BACKBONE_TYPES}, '
                         f'got {found!r}')
    kwargs = backbone.to_dict()
    kwargs.pop('type')
    kwargs['pretrained'] = None  # structure only: never load or download weights
    kwargs.pop('init_cfg', None)
    return kwargs


def _first_conv_channels(module) -> int:
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise TypeError(f'{type(module).__name__} holds no Conv2d')


def describe(model, size: int, flops: bool = True) -> dict[str, Any]:
    """Structure, shifts, parameters and (optionally) FLOPs of a built ResNetTSM.

    Args:
        model: A :class:`tsmnet.ResNetTSM`.
        size: Height and width of the frames the FLOPs are counted for.
        flops: Count FLOPs (traces one clip through the model).
    """
    import torch

    from tsmnet import NL3DWrapper, TemporalPool, TemporalShift

    shifts, pools, non_locals = [], [], []
    for name, module in model.named_modules():
        if isinstance(module, TemporalShift):
            channels = _first_conv_channels(module.net)
            shifts.append(dict(module=name, channels=channels,
                               fold=channels // module.shift_div,
                               directions=1 if module.shift_mode == 'causal' else 2))
        elif isinstance(module, TemporalPool):
            pools.append(dict(module=name, frames_in=module.num_segments,
                              frames_out=module.out_segments))
        elif isinstance(module, NL3DWrapper):
            non_locals.append(name)
    stages = {}
    for i in range(model.num_stages):
        layer = f'layer{i + 1}'
        stages[layer] = dict(
            blocks=len(getattr(model, layer).net if isinstance(getattr(model, layer),
                                                               TemporalPool)
                       else getattr(model, layer)),
            shifts=sum(s['module'].startswith(layer + '.') for s in shifts))
    info: dict[str, Any] = dict(
        architecture=dict(depth=model.depth, num_segments=model.num_segments,
                          is_shift=model.is_shift, shift_div=model.shift_div,
                          shift_place=model.shift_place, shift_mode=model.shift_mode,
                          temporal_pool=model.temporal_pool, out_indices=list(model.out_indices)),
        stages=stages, shifts=shifts, temporal_pools=pools, non_local_blocks=non_locals,
        parameters=sum(p.numel() for p in model.parameters()),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))
    if flops:
        from mmengine.analysis import FlopAnalyzer

        model.eval()
        clip = torch.zeros(model.num_segments, 3, size, size)
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, (clip,))
            analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            info['flops'] = dict(per_clip=int(analyzer.total()), input=list(clip.shape))
    return info


def format_info(info: dict[str, Any]) -> str:
    a = info['architecture']
    shift = (f"shift_place={a['shift_place']}, shift_div={a['shift_div']}, "
             f"shift_mode={a['shift_mode']}" if a['is_shift'] else 'no shift')
    lines = [f"ResNetTSM-{a['depth']}: num_segments={a['num_segments']}, {shift}, "
             f"temporal_pool={a['temporal_pool']}, out_indices={tuple(a['out_indices'])}"]
    for layer, s in info['stages'].items():
        lines.append(f"  {layer}: {s['blocks']} blocks, {s['shifts']} shifted")
    lines.append(f"shifts ({len(info['shifts'])}):")
    for s in info['shifts']:
        lines.append(f"  {s['module']}: {s['fold']} of {s['channels']} channels x "
                     f"{s['directions']} direction(s)")
    for p in info['temporal_pools']:
        lines.append(f"temporal pool: {p['module']} ({p['frames_in']} -> {p['frames_out']} "
                     'frames per clip)')
    if info['non_local_blocks']:
        lines.append(f"non-local blocks ({len(info['non_local_blocks'])}): "
                     + ', '.join(info['non_local_blocks']))
    lines.append(f"parameters: {info['parameters']:,} ({info['parameters'] / 1e6:.2f} M), "
                 f"trainable {info['trainable_parameters']:,}")
    if 'flops' in info:
        f = info['flops']
        lines.append(f"FLOPs per clip {tuple(f['input'])}: {f['per_clip'] / 1e9:.2f} G")
    return '\n'.join(lines)


def format_backends(status: dict[str, str]) -> str:
    """The shift backends (:func:`tsmnet.shift.backend_status`) as lines: each available,
    or why not, and what ``auto`` prefers."""
    from tsmnet.shift import AUTO_ORDER, ENV_BACKEND, forced_backend

    lines = [f'shift backends (auto prefers {" > ".join(AUTO_ORDER)}; forced: '
             f'{forced_backend()}, {ENV_BACKEND} or tsmnet.shift.use_backend):']
    for name, why in status.items():
        lines.append(f'  {name:<10} {"available" if not why else "unavailable: " + why}')
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    import tsmnet
    import tsmnet.weights.zoo

    args.size = args.size_given or 224
    set_threads(args.threads)

    if args.backends:
        status = tsmnet.shift.backend_status()
        _print(args, json.dumps(status, indent=2), format_backends(status))
        return 0
    target = args.config
    if target and not target.endswith('.py') and (target in tsmnet.weights.zoo.ENTRIES
                                                  or Path(target).exists()
                                                  or '://' in target):
        return _run_model(args, target)
    if target and not Path(target).is_file():
        close = tsmnet.weights.zoo.ENTRIES and _close_names(target)
        raise FileNotFoundError(f'not a zoo name, checkpoint or config file: {target}{close}')
    kwargs = (backbone_kwargs_from_config(target) if target
              else backbone_kwargs_from_args(args))
    model = tsmnet.ResNetTSM(**kwargs)
    info = describe(model, args.size, flops=not args.no_flops)
    if target:
        info['config'] = target
    _print(args, json.dumps(info, indent=2), format_info(info))
    return 0


def _close_names(text: str) -> str:
    import difflib

    from tsmnet.weights.zoo import ENTRIES

    close = difflib.get_close_matches(text, list(ENTRIES), n=3, cutoff=0.6)
    return f' (did you mean {", ".join(close)}?)' if close else ''


def _print(args: argparse.Namespace, as_json: str, as_text: str) -> None:
    if args.json_path is not None:
        write_json(args.json_path, as_json)
    if args.json_path != '-':
        print(as_text)


def describe_model(target: str, size: int | None = None, flops: bool = True) -> dict[str, Any]:
    """What ``tsmnet info NAME|CHECKPOINT`` says: the model's architecture, classes, protocol,
    zoo entry, parameters, and for a ResNetTSM backbone its structure (:func:`describe`)."""
    import tsmnet
    from tsmnet.weights.saved import protocol_to_dict
    from tsmnet.weights.zoo import ENTRIES

    entry = ENTRIES.get(target)
    model = tsmnet.create_model(target) if entry is not None else tsmnet.load(target)
    entry = entry or model.pretrained_cfg
    names = model.class_names
    info: dict[str, Any] = {
        'source': target, 'architecture': model.architecture(),
        'num_classes': model.num_classes, 'num_segments': model.num_segments,
        'class_names': names,
        'protocol': None if model.protocol is None else protocol_to_dict(model.protocol),
        'parameters': sum(p.numel() for p in model.parameters())}
    if entry is not None:
        info['zoo'] = {'name': entry.name, 'dataset': entry.dataset_name, 'top1': entry.top1,
                       'top5': entry.top5, 'url': entry.url, 'source': entry.source}
    if isinstance(model.backbone, tsmnet.ResNetTSM):
        crop = model.protocol.crop_size if model.protocol is not None else 224
        info['backbone'] = describe(model.backbone, size or crop, flops=flops)
    return info


def _any_flag(value: Any) -> bool:
    """Whether a (nested) list of 0/1 flags holds a 1."""
    return any(map(_any_flag, value)) if isinstance(value, (list, tuple)) else bool(value)


def format_model(info: dict[str, Any]) -> str:
    arch = info['architecture']
    backbone = arch['backbone']
    shape = ', '.join(f'{k}={backbone[k]}' for k in ('depth', 'widen_factor', 'arch')
                      if k in backbone and not isinstance(backbone[k], dict))
    shift = (f"shift {backbone.get('shift_mode')}, shift_div={backbone.get('shift_div')}"
             + (f", shift_place={backbone['shift_place']}" if 'shift_place' in backbone else '')
             if backbone.get('is_shift') else 'no shift (TSN)')
    lines = [info['source'],
             f"  {backbone['type']} ({shape}), {shift}, T={info['num_segments']}"
             + (', temporal pool' if backbone.get('temporal_pool') else '')
             + (', non-local blocks' if _any_flag(backbone.get('non_local')) else ''),
             f"  head: {info['num_classes']} classes, dropout "
             f"{arch['cls_head']['dropout_ratio']}, views averaged by "
             f"{arch['cls_head']['average_clips']}"]
    names = info['class_names']
    if names:
        shown = ', '.join(names[:8]) + (f' ... ({len(names)})' if len(names) > 8 else '')
        lines.append(f'  classes: {shown}')
    p = info['protocol']
    if p:
        lines.append(f"  test protocol: {p['num_clips']} segments"
                     f"{' (dense)' if p['dense'] else ''}{' x2' if p['twice_sample'] else ''}, "
                     f"short side {p['resize_short']}, {p['crop']} crop {p['crop_size']}")
    zoo = info.get('zoo')
    if zoo:
        lines.append(f"  zoo: {zoo['name']} ({zoo['dataset']}, top-1 {zoo['top1']:.2f}, "
                     f"top-5 {zoo['top5']:.2f})")
    lines.append(f"  parameters: {info['parameters']:,} ({info['parameters'] / 1e6:.2f} M)")
    if 'backbone' in info and 'flops' in info['backbone']:
        f = info['backbone']['flops']
        lines.append(f"  backbone FLOPs per clip {tuple(f['input'])}: "
                     f"{f['per_clip'] / 1e9:.2f} G")
    return '\n'.join(lines)


def _run_model(args: argparse.Namespace, target: str) -> int:
    from tsmnet.weights.zoo import ENTRIES

    if target not in ENTRIES and '://' not in target and not Path(target).exists():
        raise FileNotFoundError(f'checkpoint not found: {target}')
    info = describe_model(target, args.size_given, flops=not args.no_flops)
    _print(args, json.dumps(info, indent=2), format_model(info))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'info', help='structure, shifts, parameters and FLOPs of a ResNetTSM',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', metavar='NAME|CHECKPOINT|CONFIG',
                        help='a zoo name (tsmnet models), a checkpoint or saved-model folder, or '
                             'an MMAction2 config with a ResNetTSM backbone (else the ResNetTSM '
                             'the options below describe)')
    parser.add_argument('--depth', type=int, choices=RESNET_DEPTHS, default=50)
    parser.add_argument('--num-segments', type=int, default=8, help='frames per clip T')
    parser.add_argument('--shift-div', type=int, default=8)
    parser.add_argument('--shift-place', choices=('blockres', 'block'), default='blockres')
    parser.add_argument('--shift-mode', choices=('bidirectional', 'causal'),
                        default='bidirectional')
    parser.add_argument('--no-shift', action='store_true', help='the plain 2D ResNet')
    parser.add_argument('--temporal-pool', action='store_true')
    parser.add_argument('--non-local', choices=NON_LOCAL_MODES, default=None,
                        help="non-local blocks as in MMAction2's TSM-NL configs")
    parser.add_argument('--size', type=int, default=None, dest='size_given',
                        help="frame size for the FLOPs (default: the model's crop, else 224)")
    parser.add_argument('--no-flops', action='store_true', help='skip counting FLOPs')
    parser.add_argument('--json', nargs='?', const='-', default=None, dest='json_path',
                        metavar='PATH|-', help='write JSON to PATH, or print it (-, or no PATH)')
    add_threads(parser)
    parser.add_argument('--backends', action='store_true',
                        help='say which shift backends are available here, and why not')
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:  # `python -m tsmnet.commands.info`
    parser = CommandParser(prog='tsmnet')
    add_parser(parser.add_subparsers(dest='command'))
    args = parser.parse_args(['info', *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except Exception as err:  # one line, as `tsmnet info` fails
        return report('info', err)


if __name__ == '__main__':
    sys.exit(main())
