"""``tsmnet info``: the structure of a ResNetTSM backbone, where its shifts sit, its parameters
and FLOPs, from an MMAction2 config file or from arguments.

Examples::

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

    if args.backends:
        status = tsmnet.shift.backend_status()
        print(json.dumps(status, indent=2) if args.json else format_backends(status))
        return 0
    if args.config and not Path(args.config).is_file():
        raise FileNotFoundError(f'config file not found: {args.config}')
    kwargs = (backbone_kwargs_from_config(args.config) if args.config
              else backbone_kwargs_from_args(args))
    model = tsmnet.ResNetTSM(**kwargs)
    info = describe(model, args.size, flops=not args.no_flops)
    if args.config:
        info['config'] = args.config
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'info', help='structure, shifts, parameters and FLOPs of a ResNetTSM',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='an MMAction2 config with a ResNetTSM backbone '
                        '(else the model is described by the options below)')
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
    parser.add_argument('--size', type=int, default=224, help='frame size for the FLOPs')
    parser.add_argument('--no-flops', action='store_true', help='skip counting FLOPs')
    parser.add_argument('--json', action='store_true', help='print JSON')
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
