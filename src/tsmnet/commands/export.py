"""``tsmnet export``: write a TSM model to ONNX (fp32 or int8) or ExecuTorch, and check the file.

The model is the whole clip (``--kind clip``: ``[N, T, 3, H, W]``, any ``N``) or the online
step (``--kind step``: one frame of each stream, the shift buffers as extra inputs and
outputs; a causal model). Right after writing, the file is run by its runtime (ONNX Runtime,
ExecuTorch) on an example and, for the step, over a streamed clip, and compared with eager
PyTorch; the command prints that report and exits 2 when the file disagrees beyond its
format's bound. int8 is calibrated on ``--calibration DIR`` (a folder of videos) or, as a
quick start, on the demo's generated clips.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..fileio import write_text
from .errors import CommandError
from .stream import _load, build_backbone

BACKBONES: tuple[str, ...] = ('mobilenetv2', 'resnet18', 'resnet34', 'resnet50', 'resnet101',
                              'resnet152')
FORMATS: tuple[str, ...] = ('onnx', 'onnx-int8', 'pte', 'pte-int8', 'openvino', 'openvino-int8')


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'export', help='export to ONNX (fp32, int8) or ExecuTorch, checked against eager',
        description=__doc__.split('\n\n')[0] + '\n\n' + __doc__.split('\n\n')[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', help='the file to write (.onnx, .pte or .xml)')
    parser.add_argument('--model', metavar='NAME',
                        help='a named recognizer (tsmnet.list_models(); the step needs '
                             '--shift-mode causal); default: a causal --backbone')
    parser.add_argument('--weights', metavar='PATH',
                        help='--model: its checkpoint (a path or URL; MMAction2\'s layout or '
                             'a bare state dict); initialised from scratch when omitted')
    parser.add_argument('--shift-mode', choices=('bidirectional', 'causal'),
                        help='--model: build it with this shift (default: the entry\'s)')
    parser.add_argument('--backbone', default='mobilenetv2', choices=BACKBONES,
                        help='without --model: a causal TSM backbone (default: mobilenetv2, '
                             "the network of TSM's online demo)")
    parser.add_argument('--checkpoint', help='--backbone: its weights, a backbone state dict '
                        'or an MMAction2 recognizer checkpoint (backbone. keys); random '
                        'weights when omitted')
    parser.add_argument('--kind', default='step', choices=('clip', 'step'),
                        help='the online step (default) or whole clips')
    parser.add_argument('--format', default='onnx', choices=FORMATS,
                        help='onnx (fp32, default), onnx-int8, pte, pte-int8, openvino (.xml, fp32 '
                             'weights) or openvino-int8 (NNCF)')
    parser.add_argument('--calibration', metavar='DIR',
                        help='int8: a folder of videos (default: 16 of the demo\'s generated '
                             'clips, a quick start)')
    parser.add_argument('--quant-format', default='qoperator', choices=('qoperator', 'qdq'),
                        help='onnx-int8: ONNX Runtime\'s format (default: qoperator)')
    parser.add_argument('--size', type=int, default=224, help='frame size (default: 224)')
    parser.add_argument('--streams', type=int, default=1,
                        help='N of the example (fixed in a .pte; default: 1)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    parser.add_argument('--json', dest='json_path', help='write the report as JSON')
    parser.set_defaults(func=run)


def build_model(name: str, checkpoint: str | None = None) -> Any:
    """The causal backbone ``--backbone NAME`` (random weights, or ``checkpoint``)."""
    model = (build_backbone('mobilenetv2') if name == 'mobilenetv2'
             else build_backbone('resnet', int(name[len('resnet'):])))
    if checkpoint:
        _load(model, checkpoint)
    return model.eval()


def run(args: argparse.Namespace) -> int:
    import torch

    from tsmnet.deploy.api import export
    from tsmnet.deploy.quantize import Int8Options

    if args.size < 32:
        raise CommandError(f'--size must be >= 32, got {args.size}')
    if args.streams < 1:
        raise CommandError(f'--streams must be >= 1, got {args.streams}')
    if args.calibration and not args.format.endswith('int8'):
        raise CommandError(f'--calibration is for the int8 formats, not --format {args.format}')
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.model:
        import tsmnet

        kwargs = {} if args.shift_mode is None else {'shift_mode': args.shift_mode}
        model = tsmnet.create_model(args.model, pretrained=args.weights or False,
                                    **kwargs).eval()
    elif args.weights or args.shift_mode:
        raise CommandError('--weights and --shift-mode go with --model (for --backbone: '
                           '--checkpoint; its shift is causal)')
    else:
        model = build_model(args.backbone, args.checkpoint)
    segments = getattr(model, 'num_segments', 8)  # a recognizer's T is its head's
    calibration: Any = args.calibration
    if args.format.endswith('int8') and calibration is None:  # the quick start
        from tsmnet.demo.data import MotionDirection
        from tsmnet.deploy.calibration import normalise_unit_clips

        clips, _ = MotionDirection(args.size, max(segments, 2), seed=args.seed).sample_pairs(8)
        calibration = normalise_unit_clips(clips)
    gen = torch.Generator().manual_seed(args.seed)
    shape = ((args.streams, 3, args.size, args.size) if args.kind == 'step'
             else (args.streams, segments, 3, args.size, args.size))
    # int8: the file is checked on the calibration data; fp32: on this example
    example = None if args.format.endswith('int8') else torch.randn(*shape, generator=gen)
    report = export(model, args.out, kind=args.kind, format=args.format, example=example,
                    calibration=calibration,
                    int8=Int8Options(quant_format=args.quant_format))
    for line in report.lines():
        print(line)
    if args.json_path:
        data = {'path': str(report.path), 'format': report.format, 'kind': report.kind,
                'inputs': report.inputs, 'outputs': report.outputs,
                'size_bytes': report.size_bytes, 'seconds': report.seconds, 'ok': report.ok,
                'bound': report.bound, 'notes': report.notes,
                'checks': {name: dict(vars(c), relative_diff=c.relative_diff)
                           for name, c in report.checks.items()}}
        write_text(args.json_path, json.dumps(data, indent=1) + '\n')
    if not report.ok:
        raise CommandError(f'{report.path} disagrees with eager beyond its bound '
                           f'({report.bound}); the file is kept for inspection')
    return 0
