"""``tsmnet export``: write a TSM model to ONNX (fp32 or int8), ExecuTorch or OpenVINO, and
check the file.

The model is what ``--weights`` holds (a checkpoint of ``tsmnet finetune`` or ``tsmnet.save``
rebuilds itself: its head, shift mode, frames and frame size), a zoo model (``--model NAME``,
with ``--weights`` for a checkpoint that does not describe itself), or a causal backbone
(``--backbone``). It is exported as whole clips (``--kind clip``: ``[N, T, 3, H, W]``, any
``N``) or as the online step (``--kind step``: one frame of each stream, the shift buffers as
extra inputs and outputs; a causal model; the default for one). Right after writing, the file
is run by its runtime on an example and, for the step, over a streamed clip, and compared with
eager PyTorch; the command prints that report and exits 2 when the file disagrees beyond its
format's bound. int8 is calibrated on ``--calibration DIR`` (videos, searched through
sub-folders, e.g. the class folders ``finetune`` trained on, read as the model's test protocol
at ``--size``) or, as a quick start, on the demo's generated clips.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .errors import CommandError
from .options import (
    add_deprecated,
    add_json,
    add_model,
    add_threads,
    add_weights,
    library_errors,
    set_threads,
    write_json,
)

BACKBONES: tuple[str, ...] = ('mobilenetv2', 'resnet18', 'resnet34', 'resnet50', 'resnet101',
                              'resnet152')
FORMATS: tuple[str, ...] = ('onnx', 'onnx-int8', 'pte', 'pte-int8', 'openvino', 'openvino-int8')
VIDEO_SUFFIXES: tuple[str, ...] = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v', '.mpg',
                                   '.mpeg', '.ts', '.flv', '.wmv', '.3gp')
MAX_CALIBRATION_VIDEOS = 64  # enough for the activation ranges; the first, sorted by path


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'export', help='export to ONNX (fp32, int8), ExecuTorch or OpenVINO, checked against '
        'eager', description=__doc__.split('\n\n')[0] + '\n\n' + __doc__.split('\n\n')[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', nargs='?', help='the file to write (.onnx, .pte or .xml)')
    parser.add_argument('-o', '--output', metavar='FILE',
                        help='the file to write, as an option (instead of OUT)')
    add_model(parser, what='a zoo model (needed with --weights only when the checkpoint does '
              'not describe its model)')
    add_weights(parser, 'a checkpoint or saved-model folder (what tsmnet finetune or '
                'tsmnet.save wrote; an MMAction2 checkpoint with --model), or with --backbone '
                'its weights; default: random weights')
    add_deprecated(parser, '--checkpoint', '--weights', 'weights')
    parser.add_argument('--shift-mode', choices=('bidirectional', 'causal'),
                        help="build the model with this shift (default: the model's)")
    parser.add_argument('--backbone', choices=BACKBONES,
                        help='without --model and --weights: a causal TSM backbone (default: '
                             "mobilenetv2, the network of TSM's online demo)")
    parser.add_argument('--kind', choices=('clip', 'step'),
                        help='the online step or whole clips (default: step for a causal '
                             'model, clip otherwise)')
    parser.add_argument('--format', default='onnx', choices=FORMATS,
                        help='onnx (fp32, default), onnx-int8, pte, pte-int8, openvino (.xml, '
                             'fp32 weights) or openvino-int8 (NNCF)')
    parser.add_argument('--calibration', metavar='DIR',
                        help='int8: a folder of videos, searched through sub-folders (default: '
                             "16 of the demo's generated clips, a quick start)")
    parser.add_argument('--quant-format', default='qoperator', choices=('qoperator', 'qdq'),
                        help="onnx-int8: ONNX Runtime's format (default: qoperator)")
    parser.add_argument('--size', type=int, default=None,
                        help="frame size (default: the model's test crop, else 224)")
    parser.add_argument('--streams', type=int, default=1,
                        help='N of the example (fixed in a .pte; default: 1)')
    add_threads(parser)
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    add_json(parser, 'the report')
    parser.set_defaults(func=run)


def build_backbone(name: str, weights: str | None = None) -> Any:
    """The causal backbone ``--backbone NAME`` (random weights, or ``weights``)."""
    import tsmnet
    from tsmnet.weights.checkpoint import load_pretrained

    model = (tsmnet.MobileNetV2TSM(shift_mode='causal', pretrained=None) if name == 'mobilenetv2'
             else tsmnet.ResNetTSM(int(name[len('resnet'):]), shift_mode='causal',
                                   pretrained=None))
    if weights:
        load_pretrained(model, weights, torchvision=False)
    return model.eval()


def build_model(args: argparse.Namespace) -> Any:
    """The model of ``--weights`` / ``--model`` (through :func:`tsmnet.predictor.load_model`,
    as predict and stream build theirs) or ``--backbone``."""
    import tsmnet
    from tsmnet.predictor import load_model

    overrides = {} if args.shift_mode is None else {'shift_mode': args.shift_mode}
    if args.backbone is not None or (args.model is None and args.weights is None):
        if args.model is not None or args.shift_mode is not None:
            raise CommandError('--backbone exports a causal backbone: --model and --shift-mode '
                               'go without it')
        return build_backbone(args.backbone or 'mobilenetv2', args.weights)
    if args.weights is None:  # a zoo architecture, random weights (nothing downloaded)
        with library_errors():
            return tsmnet.create_model(args.model, **overrides).eval()
    if args.model is None and '://' not in args.weights and not Path(args.weights).exists():
        raise CommandError(f'--weights: no such file or folder: {args.weights}')
    try:
        with library_errors():
            return load_model(args.model, args.weights, **overrides)
    except CommandError as err:
        if args.model is None and 'do not describe their model' in str(err):
            raise CommandError(f'--weights {args.weights} does not describe its model (a '
                               f'release or a bare state dict): give its zoo name with --model '
                               f'NAME') from None
        raise


def calibration_videos(folder: str) -> list[Path]:
    """The videos under ``folder`` (sub-folders too, e.g. one per class), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise CommandError(f'--calibration: not a folder: {folder}')
    files = sorted(p for p in root.rglob('*') if p.suffix.lower() in VIDEO_SUFFIXES
                   and p.is_file() and not any(part.startswith('.') for part in
                                               p.relative_to(root).parts))
    if not files:
        raise CommandError(f'--calibration: {folder} holds no video '
                           f'({", ".join(VIDEO_SUFFIXES)}), also in its sub-folders')
    return files[:MAX_CALIBRATION_VIDEOS]


def calibration_clips(folder: str, model: Any, size: int, frames: int) -> list[Any]:
    """One clip ``[1, T, 3, size, size]`` per video of ``folder``, read as the model's test
    protocol (its mean and std) with one center crop of ``size``."""
    from dataclasses import replace

    from tsmnet.video import TestProtocol, VideoError, load_video

    base = getattr(model, 'protocol', None) or TestProtocol()
    protocol = replace(base, num_clips=frames, twice_sample=False, dense=False, crop='center',
                       crop_size=size, resize_short=max(size, round(size * 8 / 7)))
    clips = []
    for path in calibration_videos(folder):
        try:
            clips.append(load_video(path, protocol)[:1])
        except VideoError as err:
            raise CommandError(f'--calibration: {err}') from None
    return clips


def run(args: argparse.Namespace) -> int:
    import torch

    from tsmnet.deploy.api import export
    from tsmnet.deploy.quantize import Int8Options

    if (args.out is None) == (args.output is None):
        raise CommandError('give the file to write once: as OUT or as -o/--output FILE'
                           + (f', not both ({args.out}, {args.output})' if args.out else ''))
    out = args.out or args.output
    if args.size is not None and args.size < 32:
        raise CommandError(f'--size must be >= 32, got {args.size}')
    if args.streams < 1:
        raise CommandError(f'--streams must be >= 1, got {args.streams}')
    if args.calibration and not args.format.endswith('int8'):
        raise CommandError(f'--calibration is for the int8 formats, not --format {args.format}')
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model(args)
    protocol = getattr(model, 'protocol', None)
    size = args.size or (protocol.crop_size if protocol is not None else 224)
    causal = getattr(getattr(model, 'backbone', model), 'shift_mode', None) == 'causal'
    kind = args.kind or ('step' if causal else 'clip')
    segments = getattr(model, 'num_segments', 8)  # a recognizer's T is its head's
    calibration: Any = None
    if args.format.endswith('int8'):
        if args.calibration:
            calibration = calibration_clips(args.calibration, model, size, max(segments, 2))
        else:  # the quick start
            from tsmnet.demo.data import MotionDirection
            from tsmnet.deploy.calibration import normalise_unit_clips

            clips, _ = MotionDirection(size, max(segments, 2), seed=args.seed).sample_pairs(8)
            calibration = normalise_unit_clips(clips)
    gen = torch.Generator().manual_seed(args.seed)
    shape = ((args.streams, 3, size, size) if kind == 'step'
             else (args.streams, segments, 3, size, size))
    # int8: the file is checked on the calibration data; fp32: on this example
    example = None if args.format.endswith('int8') else torch.randn(*shape, generator=gen)
    report = export(model, out, kind=kind, format=args.format, example=example,
                    calibration=calibration, int8=Int8Options(quant_format=args.quant_format))
    if args.json_path != '-':
        for line in report.lines():
            print(line)
    data = {'path': str(report.path), 'format': report.format, 'kind': report.kind,
            'size': size, 'inputs': report.inputs, 'outputs': report.outputs,
            'size_bytes': report.size_bytes, 'seconds': report.seconds, 'ok': report.ok,
            'bound': report.bound, 'notes': report.notes,
            'checks': {name: dict(vars(c), relative_diff=c.relative_diff)
                       for name, c in report.checks.items()}}
    write_json(args.json_path, json.dumps(data, indent=1))
    if not report.ok:
        raise CommandError(f'{report.path} disagrees with eager beyond its bound '
                           f'({report.bound}); the file is kept for inspection')
    return 0
