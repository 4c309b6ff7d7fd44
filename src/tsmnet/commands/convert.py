"""``tsmnet convert``: turn a torchvision, timm, original-TSM or MMAction2 checkpoint into one
that MMAction2 and tsmnet load directly.

The output is MMAction2's recognizer layout, ``{'state_dict': {'backbone.…': …,
'cls_head.fc_cls.…': …}, 'meta': {...}}``: MMAction2 loads it with ``load_from`` or
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``, tsmnet with
``ResNetTSM(..., pretrained=DST)``. Every converted key is checked against a tsmnet
``ResNetTSM`` of the architecture the file holds; a partial result is not written unless
``--allow-partial`` is given. DST is written atomically: a failed write leaves a previous
file intact.

MobileNetV2 files (torchvision's, MMPretrain's, the TSM online demo's with ``--from tsm``,
MMAction2's) are recognised by their keys and checked against a tsmnet ``MobileNetV2TSM`` of
the width they hold.
"""

from __future__ import annotations

import argparse

from ..archs import RESNET_DEPTHS
from .errors import CommandError
from .options import add_threads, set_threads

# the layouts convert reads (tsmnet.weights.keymap.SOURCE_FORMATS + tsmnet.weights.conversion.
# MOBILENET_V2_FORMATS) and ResNetTSM's shift places (tsmnet.models.resnet_tsm.SHIFT_PLACES),
# named here so that --help imports no torch; a test keeps them equal
FORMATS: tuple[str, ...] = ('torchvision', 'timm', 'tsm', 'mmaction', 'mmpretrain')
SHIFT_PLACES: tuple[str, ...] = ('block', 'blockres')

__all__ = ['FORMATS', 'SHIFT_PLACES', 'add_parser', 'run']


def run(args: argparse.Namespace) -> int:
    from ..weights.conversion import convert_checkpoint, save_conversion

    set_threads(args.threads)  # the converted file is checked against the model it is for
    conversion = convert_checkpoint(
        args.src, args.source_format, depth=args.depth, in_channels=args.in_channels,
        shift_place=args.shift_place, is_shift=not args.no_shift,
        temporal_pool=args.temporal_pool)
    print(conversion.summary())
    if not conversion.complete and not args.allow_partial:
        raise CommandError(f'the conversion of {args.src} is partial; nothing written (pass '
                           f'--allow-partial to write the keys that fit)')
    save_conversion(conversion, args.dst, args.src, args.source_format)
    state = 'complete' if conversion.complete else 'PARTIAL'
    print(f'wrote {args.dst} ({state}, {len(conversion.state_dict)} keys)')
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'convert', help='convert torchvision/timm/TSM/MMAction2 weights for tsmnet and MMAction2',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='the checkpoint to convert (.pth or .safetensors)')
    parser.add_argument('dst', help='where to write the MMAction2-style checkpoint')
    parser.add_argument('--from', dest='source_format', required=True,
                        choices=FORMATS,
                        help='the layout of SRC; tsm = the original mit-han-lab release (for '
                             'MobileNetV2: its online demo); mmpretrain = MMPretrain/mmcls '
                             '(MobileNetV2). ResNet or MobileNetV2 is read off the keys')
    parser.add_argument('--depth', type=int, choices=RESNET_DEPTHS,
                        help='refuse SRC unless it holds a ResNet of this depth')
    parser.add_argument('--in-channels', type=int, default=None,
                        help='input channels of the result (e.g. 2 for optical flow): the '
                             'stem conv is inflated as TSN does (default: as in SRC)')
    parser.add_argument('--shift-place', choices=SHIFT_PLACES, default='blockres',
                        help='TSM structure to write 2D weights for (default: blockres)')
    parser.add_argument('--no-shift', action='store_true',
                        help='write 2D weights for a ResNet without shift')
    parser.add_argument('--temporal-pool', action='store_true',
                        help='write 2D weights for a ResNetTSM with temporal_pool=True')
    parser.add_argument('--allow-partial', action='store_true',
                        help='write the keys that fit even if some are missing, unexpected '
                             'or of another shape')
    add_threads(parser)
    parser.set_defaults(func=run)

