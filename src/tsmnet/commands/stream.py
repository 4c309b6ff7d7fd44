"""``tsmnet stream``: run a causal TSM model over a video frame by frame, live.

The model is what ``--weights`` holds (a checkpoint of ``tsmnet finetune`` or ``tsmnet.save``
rebuilds itself: its head, class names and test protocol), a zoo model (``--model NAME``,
its published weights, or ``--weights`` for a checkpoint that does not describe itself), or a
causal backbone with random weights (``--backbone``). It runs with a causal shift: a model
trained with a bidirectional one is then another model, and a warning says so. Frames come
from a video file, a camera (``--camera N`` or ``/dev/videoN``), a network stream
(``rtsp://``, ``http(s)://``, ``udp://``...) or a pipe on standard input (``-``), read with
PyAV; each is resized (short side) and center-cropped as the model's test protocol reads one
view, normalised with its mean and std, and stepped through the model alone.

Per frame the command prints the step latency and the class names and probabilities of the
last ``--smooth`` frames' consensus (the top feature channel for a backbone without a head).
A live source never waits for the model: frames it is too slow for are dropped and counted.
Without a source it streams a generated clip: a bright square moving across a dark frame.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..archs import RESNET_DEPTHS
from ..fileio import write_text
from .errors import CommandError
from .options import (
    add_deprecated,
    add_model,
    add_runtime,
    add_threads,
    add_weights,
    library_errors,
    set_threads,
)

DEFAULT_SMOOTH = 8  # frames in the consensus when the model does not say its T
BACKBONES: tuple[str, ...] = ('mobilenetv2', 'resnet18', 'resnet34', 'resnet50', 'resnet101',
                              'resnet152')


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'stream', help='run a causal TSM backbone over a video frame by frame (online TSM)',
        description=__doc__.split('\n\n')[0] + '\n\n' + __doc__.split('\n\n')[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', nargs='?', metavar='SOURCE',
                        help='a video file, a camera (/dev/videoN), a URL (rtsp://, http://, '
                             "https://, udp://...) or '-' for a pipe on standard input; a "
                             'generated clip when omitted')
    parser.add_argument('--camera', type=int, metavar='N',
                        help='read camera N (/dev/videoN through v4l2 on Linux, avfoundation '
                             'on macOS)')
    parser.add_argument('--input-format', metavar='FMT',
                        help="FFmpeg's input format when it cannot be guessed (mjpeg, "
                             'mpegts, v4l2...)')
    parser.add_argument('--input-option', action='append', default=[], metavar='KEY=VALUE',
                        help="an FFmpeg option of the input (video_size=640x480, "
                             'framerate=30, rtsp_transport=udp...; repeatable)')
    add_model(parser, what='a zoo model (with --weights only when the checkpoint does not '
              'describe its model; alone: its published weights, downloaded once)')
    add_weights(parser, 'a checkpoint or saved-model folder (what tsmnet finetune or tsmnet.save '
                'wrote; an MMAction2 checkpoint with --model), or with --backbone its weights')
    parser.add_argument('--backbone', choices=BACKBONES,
                        help='without --model and a --weights that describes its model: a '
                             'causal TSM backbone, random weights unless --weights (default: '
                             'resnet50)')
    add_deprecated(parser, '--checkpoint', '--weights', 'weights')
    add_deprecated(parser, '--arch', '--backbone', 'arch', choices=('resnet', 'mobilenetv2'))
    add_deprecated(parser, '--depth', '--backbone resnet{}', 'depth', type=int,
                   choices=RESNET_DEPTHS)
    add_deprecated(parser, '--shift-place', '--weights of a model saved with it',
                   'shift_place', choices=('blockres', 'block'))
    add_deprecated(parser, '--shift-div', '--weights of a model saved with it', 'shift_div',
                   type=int)
    parser.add_argument('--frames', type=int, default=None,
                        help='frames to process (default: the whole video, 16 generated)')
    parser.add_argument('--size', type=int, default=None,
                        help="the model input side (default: the test protocol's crop, else "
                             '224); the short side is resized to SIZE * 256 / 224, then a SIZE '
                             'x SIZE center crop')
    parser.add_argument('--labels', metavar='FILE',
                        help="class names, one a line (default: the checkpoint's, labels.txt "
                             'beside --weights, else "class N")')
    parser.add_argument('--smooth', '--window', dest='smooth', type=int, default=None,
                        metavar='K',
                        help="frames whose class logits are averaged (TSM's consensus over "
                             "the last K frames; default: the model's T, its frames per clip, "
                             'else 8)')
    parser.add_argument('--threshold', type=float, default=0.0, metavar='P',
                        help='name the top class only when its probability is at least P '
                             '(default: 0, always)')
    parser.add_argument('--top', type=int, default=3, help='classes per frame in --jsonl and '
                        '--json (default: 3)')
    parser.add_argument('--queue', type=int, default=2, metavar='N',
                        help='frames decoded ahead of the model (default: 2); a live source '
                             'drops the oldest when they are full')
    parser.add_argument('--no-drop', action='store_true',
                        help='make a live source wait for the model instead of dropping frames '
                             '(files always wait)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    add_threads(parser)
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    parser.add_argument('--json', dest='json_path', metavar='PATH',
                        help='write the summary and every frame as one JSON document at the '
                             "end ('-': standard output)")
    parser.add_argument('--jsonl', dest='jsonl_path', metavar='PATH',
                        help="write one JSON line per frame as it is scored ('-': standard "
                             'output; the human lines then go to standard error)')
    add_runtime(parser, "the model's step")
    parser.add_argument('--onnx', metavar='FILE',
                        help='run an exported step (tsmnet export --kind step, fp32 or int8) on '
                             'ONNX Runtime instead of the eager model; its frame size is used, '
                             'and with --weights (the checkpoint it was exported from) its '
                             'test protocol and class names')
    parser.add_argument('--quiet', action='store_true', help='print the summary only')
    parser.set_defaults(func=run)


def generated_clip(frames: int, size: int) -> Iterator[np.ndarray]:
    """A bright square moving left to right on a dark background: ``[size, size, 3]`` uint8
    RGB frames."""
    side = max(size // 4, 1)
    for t in range(frames):
        frame = np.full((size, size, 3), 16, dtype=np.uint8)
        x = round(t * (size - side) / max(frames - 1, 1))
        y = (size - side) // 2
        frame[y:y + side, x:x + side] = (240, 200, 40)
        yield frame


def build_backbone(name: str, shift_place: str = 'blockres', shift_div: int = 8) -> Any:
    """The causal backbone that ``tsmnet stream --backbone NAME`` runs (random weights)."""
    from tsmnet import MobileNetV2TSM, ResNetTSM

    if name == 'mobilenetv2':
        return MobileNetV2TSM(shift_mode='causal', shift_div=shift_div, pretrained=None)
    if name not in BACKBONES:
        raise ValueError(f'backbone must be one of {BACKBONES}, got {name!r}')
    return ResNetTSM(int(name[len('resnet'):]), shift_mode='causal', shift_place=shift_place,
                     shift_div=shift_div, pretrained=None)


@dataclass
class StreamModel:
    """What the stream runs: a recognizer (``model``, its head and class names) or a bare
    backbone (``model`` a backbone; ``head`` the checkpoint's classifier, or None)."""

    model: Any
    head: tuple[Any, Any] | None
    labels: list[str] | None
    protocol: Any
    name: str
    backbone: str | None = None  # --backbone's name, for a bare backbone


# the deprecated options that chose the backbone's structure, and the description's names
_LEGACY = {'depth': 'depth', 'shift_place': 'shift_place', 'shift_div': 'shift_div'}


def _legacy_backbone(args: argparse.Namespace) -> str | None:
    """``--backbone``, or what the deprecated ``--arch``/``--depth`` spelled."""
    if args.arch is None and args.depth is None:
        return args.backbone
    old = 'mobilenetv2' if args.arch == 'mobilenetv2' else f'resnet{args.depth or 50}'
    if args.backbone is not None and args.depth is None and \
            (args.arch == 'mobilenetv2') == (args.backbone == 'mobilenetv2'):
        return args.backbone  # --arch resnet --backbone resnet18
    if args.backbone is not None and args.backbone != old:
        raise CommandError(f'--backbone {args.backbone} and the deprecated --arch/--depth '
                           f'({old}) disagree')
    return old


def _check_legacy(args: argparse.Namespace, backbone: Any, source: str) -> None:
    """The deprecated structure options given with a model that describes itself must be
    its own (they used to build it)."""
    from tsmnet.models.architecture import describe_backbone

    built = describe_backbone(backbone)
    wanted = {k: getattr(args, k) for k in _LEGACY if getattr(args, k) is not None}
    if args.arch is not None:
        wanted['type'] = 'MobileNetV2TSM' if args.arch == 'mobilenetv2' else 'ResNetTSM'
    if args.backbone is not None:
        wanted['type'] = 'MobileNetV2TSM' if args.backbone == 'mobilenetv2' else 'ResNetTSM'
        if args.backbone != 'mobilenetv2':
            wanted['depth'] = int(args.backbone[len('resnet'):])
    differ = {k: v for k, v in wanted.items() if built.get(k) != v}
    if differ:
        holds = ', '.join(f'{k}={built.get(k)!r}' for k in differ)
        asked = ', '.join(f'{k}={v!r}' for k, v in differ.items())
        raise CommandError(f'--weights {source} holds a {built["type"]} with {holds}; the '
                           f'options asked for {asked} (leave them out: the checkpoint '
                           'describes its model)')


def _saved_info(weights: str) -> Any:
    """What a checkpoint says of its model (:class:`tsmnet.weights.saved.SavedModelInfo`)."""
    from tsmnet.weights.saved import read_saved

    if '://' not in weights and not Path(weights).exists():
        raise CommandError(f'--weights: no such file or folder: {weights}')
    with library_errors():
        return read_saved(weights)[1]


def _describes_itself(weights: str | None) -> bool:
    if weights is None:
        return False
    if '://' in weights:
        return True  # downloaded and read by the loader, which says when it does not
    from tsmnet.weights.saved import read_saved

    if not Path(weights).exists():
        raise CommandError(f'--weights: no such file or folder: {weights}')
    return read_saved(weights)[1].architecture is not None


def build_stream_model(args: argparse.Namespace) -> StreamModel:
    """The model of ``--model``/``--weights`` (through :func:`tsmnet.predictor.load_model`,
    causal), or the ``--backbone`` (random weights, or ``--weights``'s backbone and head)."""
    from tsmnet.models.architecture import describe_backbone
    from tsmnet.predictor import class_labels, load_model, stream_protocol

    backbone_name = _legacy_backbone(args)
    if args.model is not None or _describes_itself(args.weights):
        with library_errors():
            model = load_model(args.model, args.weights, causal=True)
            labels = class_labels(model, args.weights, args.labels)
        _check_legacy(args, model.backbone, args.weights or args.model)
        if model.cls_head.avg_pool is None:
            raise CommandError("the model's head must pool its features (spatial_type='avg') "
                               'to classify frame by frame')
        fc = model.cls_head.fc_cls
        built = describe_backbone(model.backbone)
        title = built['type'] + (f'-{built["depth"]}' if 'depth' in built else '')
        return StreamModel(model, (fc.weight, fc.bias), labels,
                           stream_protocol(model.protocol, args.size),
                           f'{args.weights or args.model}: a causal {title} of {len(labels)} '
                           'classes')
    backbone_name = backbone_name or 'resnet50'
    model = build_backbone(backbone_name, args.shift_place or 'blockres', args.shift_div or 8)
    head, names = _load_backbone(model, args.weights) if args.weights else (None, None)
    labels = None
    if head is not None:
        labels = _labels(args, head[0].shape[0], names)
    title = 'MobileNetV2-TSM' if backbone_name == 'mobilenetv2' else \
        f'ResNet-{backbone_name[len("resnet"):]}-TSM {args.shift_place or "blockres"}'
    return StreamModel(model, head, labels, stream_protocol(None, args.size),
                       f'a causal {title}', backbone_name)


def _load_backbone(model: Any, path: str) -> tuple[Any, list[str] | None]:
    """Load ``path`` (a backbone state dict, or a recognizer checkpoint that does not describe
    its model) into the backbone ``model``; return the classifier ``(weight, bias)`` (or None)
    and the class names the checkpoint carries (or None)."""
    from tsmnet.weights.checkpoint import load_state_dict_checked
    from tsmnet.weights.saved import read_saved

    state_dict, info = read_saved(path)
    if any(k.startswith('backbone.') for k in state_dict):
        backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                    if k.startswith('backbone.')}
    else:
        backbone = {k: v for k, v in state_dict.items() if not k.startswith('cls_head.')}
    load_state_dict_checked(model, backbone, strict=True, source=path)
    weight = state_dict.get('cls_head.fc_cls.weight')
    if weight is None:
        return None, info.class_names
    return (weight, state_dict.get('cls_head.fc_cls.bias')), info.class_names


class OnnxStep:
    """An exported step (``frames, buffer_i -> features or scores, new_buffer_i``) on ONNX
    Runtime, fed its own new buffers frame after frame, for one stream."""

    def __init__(self, path: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        if not Path(path).is_file():
            raise FileNotFoundError(f'--onnx file not found: {path}')
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(path, options,
                                                providers=['CPUExecutionProvider'])
        except Exception as err:  # onnxruntime raises its own error types
            raise ValueError(f'--onnx {path} is not an ONNX model ONNX Runtime can load: '
                             f'{" ".join(str(err).split())[:200]}') from err
        inputs = self.session.get_inputs()
        if inputs[0].name != 'frames' or not all(i.name.startswith('buffer_')
                                                 for i in inputs[1:]):
            raise ValueError(f'--onnx {path} is not an exported step: expected inputs frames, '
                             f'buffer_0 ... (tsmnet export --kind step), got '
                             f'{[i.name for i in inputs][:3]}')
        shape = inputs[0].shape
        if not all(isinstance(d, int) for d in shape[1:]):
            raise ValueError(f'--onnx {path}: the frame size must be fixed, got {shape}')
        self.size = int(shape[2])
        self.scores = self.session.get_outputs()[0].name == 'scores'
        self.num_sites = len(inputs) - 1
        self.names = [i.name for i in inputs]
        self.buffers = [np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
                        for i in inputs[1:]]

    def step(self, frame: Any) -> Any:
        import torch

        outputs = self.session.run(None, dict(zip(self.names, [frame.numpy(), *self.buffers])))
        self.buffers = outputs[len(outputs) - self.num_sites:]
        return torch.from_numpy(outputs[0])


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise CommandError(f'--input-option must be KEY=VALUE, got {pair!r}')
        options[key] = value
    return options


def _labels(args: argparse.Namespace, num_classes: int,
            saved: list[str] | None = None) -> list[str]:
    """Class names: --labels, the checkpoint's own, labels.txt beside it, or ``class N``."""
    if not args.labels and saved is not None and len(saved) == num_classes:
        return list(saved)
    path = Path(args.labels) if args.labels else \
        (Path(args.weights).parent / 'labels.txt' if args.weights else None)
    if path is None or (not args.labels and not path.is_file()):
        return [f'class {i}' for i in range(num_classes)]
    try:
        names = [line.strip() for line in path.read_text(encoding='utf-8').splitlines()
                 if line.strip()]
    except OSError as err:
        raise CommandError(f'--labels: cannot read {path}: {err.strerror or err}') from None
    if len(names) != num_classes:
        raise CommandError(f'--labels: {len(names)} class names in {path} for a model of '
                           f'{num_classes} classes')
    return names


def _open_source(args: argparse.Namespace) -> tuple[Any, str]:
    """The frames to stream: a :class:`FrameSource`, or the generated clip."""
    from tsmnet.video import FrameSource, VideoError

    if args.camera is not None and args.source:
        raise CommandError('give a SOURCE or --camera, not both')
    source = args.camera if args.camera is not None else args.source
    if source is None:
        clip = generated_clip(args.frames or 16, args.size)
        return contextlib.nullcontext(enumerate(clip)), 'a generated clip'
    if args.queue < 1:
        raise CommandError(f'--queue must be >= 1, got {args.queue}')
    try:
        frames = FrameSource(source, input_format=args.input_format,
                             options=_options(args.input_option),
                             drop=False if args.no_drop else None, queue_size=args.queue)
    except VideoError as err:
        raise CommandError(str(err)) from None
    what = {'camera': 'camera', 'network': 'stream', 'pipe': 'standard input',
            'file': 'video'}[frames.kind]
    return frames, f'{what} {frames.name}'


def _emit(stream: TextIO, record: dict[str, Any]) -> None:
    stream.write(json.dumps(record) + '\n')
    stream.flush()


def run(args: argparse.Namespace) -> int:
    from tsmnet.stdout import results_stdout

    if args.frames is not None and args.frames < 1:
        raise CommandError(f'--frames must be >= 1, got {args.frames}')
    if args.size is not None and args.size < 32:
        raise CommandError(f'--size must be >= 32, got {args.size}')
    if args.smooth is not None and args.smooth < 1:
        raise CommandError(f'--smooth must be >= 1, got {args.smooth}')
    if not 0.0 <= args.threshold <= 1.0:
        raise CommandError(f'--threshold must be a probability in [0, 1], got {args.threshold}')
    if args.top < 1:
        raise CommandError(f'--top must be >= 1, got {args.top}')
    if args.json_path == '-' and args.jsonl_path == '-':
        raise CommandError("only one of --json, --jsonl can write to standard output ('-')")
    with results_stdout('-' in (args.json_path, args.jsonl_path)) as out:
        return _stream(args, out)


def _stream(args: argparse.Namespace, out: TextIO) -> int:
    """The stream itself; ``out`` is where results sent to ``-`` go."""
    import torch

    from tsmnet.deploy.runtime import step_runner
    from tsmnet.online import OnlineScores
    from tsmnet.predictor import stream_protocol
    from tsmnet.stream import TSMStream
    from tsmnet.video import FrameTransform, VideoError

    set_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    runtime = ('eager', 'fp32') if not args.onnx else ('onnxruntime', 'fp32')
    class_names: list[str] | None = None
    scores_out = False  # the step gives the frame's class logits (else features)
    if args.onnx:
        if args.model or _legacy_backbone(args):
            raise CommandError('--model/--backbone and --onnx exclude each other: the model is '
                               'in the ONNX file (--weights may name the checkpoint it was '
                               'exported from, for its protocol and class names)')
        onnx_step = OnnxStep(args.onnx, args.threads)
        device, head, scores_out = torch.device('cpu'), None, onnx_step.scores
        backbone = None
        step = onnx_step.step
        saved = _saved_info(args.weights) if args.weights else None
        class_names = saved.class_names if saved is not None else None
        protocol = stream_protocol(saved.protocol if saved is not None else None,
                                   onnx_step.size)
        if args.smooth is None and saved is not None and saved.architecture is not None:
            args.smooth = (saved.architecture.get('cls_head') or {}).get('num_segments')
        name = (f'an exported step {args.onnx} ({onnx_step.num_sites} shift sites, '
                f'ONNX Runtime)')
    else:
        built = build_stream_model(args)
        backbone = built.backbone
        model, head, class_names, protocol = built.model, built.head, built.labels, \
            built.protocol
        model.to(device).eval()
        recognizer = head is not None and hasattr(model, 'cls_head')
        if head is not None:
            head = tuple(None if t is None else t.to(device) for t in head)
        if args.runtime == 'eager' and args.precision in (None, 'fp32'):
            stream = TSMStream(model.backbone if recognizer else model)
            step, sites = stream.step, stream.num_sites
        else:  # the step compiled or exported at the crop size, checked against eager
            try:
                runner = step_runner(model, args.runtime, args.precision, threads=args.threads,
                                     size=protocol.crop_size)
            except ValueError as err:
                raise CommandError(f'--runtime/--precision: {err}') from None
            step, sites, scores_out = runner, runner.num_sites, runner.scores
            runtime = (runner.runtime, runner.precision)
        name = f'{built.name} ({sites} shift sites), {runtime[0]} {runtime[1]}'
        if args.smooth is None and hasattr(model, 'num_segments'):
            args.smooth = model.num_segments  # the offline model's consensus, online
    args.smooth = args.smooth or DEFAULT_SMOOTH
    size = protocol.crop_size
    args.size = size  # the generated clip's side
    transform = FrameTransform(protocol)
    frames, source = _open_source(args)
    jsonl = out if args.jsonl_path == '-' else \
        (open(args.jsonl_path, 'w', encoding='utf-8') if args.jsonl_path else None)  # noqa: SIM115
    human = sys.stderr if '-' in (args.jsonl_path, args.json_path) else sys.stdout
    print(f'streaming {source} through {name} on {device}, {size}x{size} '
          f'({transform})', file=human)

    records: list[dict[str, Any]] = []
    scores: OnlineScores | None = None
    dropped = 0
    try:
        with frames as numbered:
            for number, frame in numbered:
                x = transform(frame)[None].to(device)
                if device.type == 'cuda':
                    torch.cuda.synchronize()
                start = time.perf_counter()
                features = step(x)
                if device.type == 'cuda':
                    torch.cuda.synchronize()
                latency = time.perf_counter() - start
                dropped = getattr(frames, 'dropped', 0)
                record: dict[str, Any] = {'frame': number, 'ms': round(1e3 * latency, 3),
                                          'dropped': dropped}
                if scores_out:  # the step of a recogniser: the frame's class logits
                    logits = features.float()[0]
                elif head is not None:
                    weight, bias = head
                    pooled = features.float().mean(dim=(2, 3))[0]
                    logits = pooled @ weight.float().t() + (0 if bias is None else bias.float())
                else:
                    logits = None
                if logits is not None:
                    if scores is None:
                        scores = OnlineScores(_labels(args, logits.numel(), class_names),
                                              args.smooth, args.threshold, args.top)
                    result = scores.update(logits)
                    record.update(label=result.label, window=result.window,
                                  top=[{'index': i, 'label': label, 'prob': round(p, 6)}
                                       for i, label, p in result.top])
                    _, best, prob = result.top[0]
                    what = (f'{best} {prob:.4f}' if result.label is not None else
                            f'- (best {best} {prob:.4f} < {args.threshold})') + \
                        f' (last {result.window} frames)'
                else:
                    pooled = features.float().mean(dim=(2, 3))[0]
                    top = int(pooled.argmax())
                    record.update(top_feature=top, value=round(float(pooled[top]), 6))
                    what = f'top feature {top} ({record["value"]:.4f})'
                records.append(record)
                if jsonl is not None:
                    _emit(jsonl, record)
                if not args.quiet:
                    extra = f'  ({dropped} dropped)' if dropped else ''
                    print(f'frame {number:4d}  {record["ms"]:8.2f} ms  {what}{extra}', file=human)
                if args.frames is not None and len(records) >= args.frames:
                    break
    except VideoError as err:
        raise CommandError(str(err)) from None
    finally:
        if jsonl is not None and jsonl is not out:
            jsonl.close()
    if not records:
        raise CommandError(f'no frame could be read from {source}: expected a video')

    latencies = sorted(r['ms'] for r in records[1:] or records)  # the first step allocates
    # interpolated, so never below the median however few frames there are
    p90 = (statistics.quantiles(latencies, n=10, method='inclusive')[-1]
           if len(latencies) > 1 else latencies[0])
    median = statistics.median(latencies)
    dropped = getattr(frames, 'dropped', 0)
    print(f'{len(records)} frames; per-frame latency median {median:.2f} ms, p90 {p90:.2f} ms '
          f'({1e3 / median:.1f} frames/s; first frame, which allocates the buffers, excluded); '
          f'{dropped} frames dropped', file=human)
    if args.json_path:
        summary = {'source': source, 'model': args.model, 'weights': args.weights,
                   'backbone': backbone, 'size': size, 'onnx': args.onnx,
                   'runtime': runtime[0], 'precision': runtime[1],
                   'device': str(device), 'median_ms': median,
                   'p90_ms': p90, 'dropped': dropped, 'frames': records}
        text = json.dumps(summary, indent=1) + '\n'
        if args.json_path == '-':
            out.write(text)
        else:
            write_text(args.json_path, text)
    return 0
