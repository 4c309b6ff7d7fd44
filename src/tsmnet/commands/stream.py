"""``tsmnet stream``: run a causal ResNetTSM or MobileNetV2TSM over a video frame by frame, as a
live camera would.

Each frame is read (decord, or OpenCV where decord cannot open the file), resized to
``--size`` x ``--size``, normalised with the ImageNet mean and std of MMAction2's TSM configs,
and passed through :class:`tsmnet.TSMStream` alone. Per frame the command prints the step
latency and the top feature channel (spatially averaged), or, with a checkpoint that has
MMAction2's ``cls_head.fc_cls``, the top class averaged over the last ``--window`` frames
(TSM's segment consensus, online). Without a video it streams a generated clip: a bright
square moving across a dark frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..archs import RESNET_DEPTHS
from ..fileio import write_text
from .errors import CommandError

# MMAction2's ActionDataPreprocessor for TSM (RGB, 0..255)
MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
STD: tuple[float, float, float] = (58.395, 57.12, 57.375)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'stream', help='run a causal TSM backbone over a video frame by frame (online TSM)',
        description=__doc__.split('\n\n')[0] + '\n\n' + __doc__.split('\n\n')[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('video', nargs='?', help='a video file; a generated clip when omitted')
    parser.add_argument('--arch', default='resnet', choices=ARCHS,
                        help='backbone: a ResNetTSM of --depth, or MobileNetV2TSM (the '
                             'network of TSM\'s online demo; default: resnet)')
    parser.add_argument('--depth', type=int, default=50, choices=RESNET_DEPTHS,
                        help='ResNet depth (default: 50)')
    parser.add_argument('--frames', type=int, default=None,
                        help='frames to process (default: the whole video, 16 generated)')
    parser.add_argument('--size', type=int, default=224,
                        help='frames are resized to SIZE x SIZE (default: 224)')
    parser.add_argument('--checkpoint', help='weights of the causal backbone: a backbone state '
                        'dict or an MMAction2 recognizer checkpoint (backbone. and cls_head. '
                        'keys); random weights when omitted')
    parser.add_argument('--shift-place', default='blockres', choices=('blockres', 'block'),
                        help='where a ResNet shifts (default: blockres)')
    parser.add_argument('--shift-div', type=int, default=8)
    parser.add_argument('--reader', default='auto', choices=READERS,
                        help='video decoder: decord, opencv, or auto (decord, else OpenCV)')
    parser.add_argument('--window', type=int, default=8,
                        help='frames whose class scores are averaged (default: 8)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random weights')
    parser.add_argument('--json', dest='json_path', help='write per-frame results as JSON')
    parser.add_argument('--onnx', metavar='FILE',
                        help='run an exported step (tsmnet export --kind step, fp32 or int8) on '
                             'ONNX Runtime instead of the eager model; its frame size is used')
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


READERS: tuple[str, ...] = ('auto', 'decord', 'opencv')
ARCHS: tuple[str, ...] = ('resnet', 'mobilenetv2')


def build_backbone(arch: str, depth: int = 50, shift_place: str = 'blockres',
                   shift_div: int = 8) -> Any:
    """The causal backbone that ``tsmnet stream --arch ARCH`` runs (random weights)."""
    from tsmnet import MobileNetV2TSM, ResNetTSM

    if arch == 'mobilenetv2':
        return MobileNetV2TSM(shift_mode='causal', shift_div=shift_div, pretrained=None)
    if arch == 'resnet':
        return ResNetTSM(depth, shift_mode='causal', shift_place=shift_place,
                         shift_div=shift_div, pretrained=None)
    raise ValueError(f'arch must be one of {ARCHS}, got {arch!r}')


def read_video(path: str, frames: int | None = None,
               reader: str = 'auto') -> Iterator[np.ndarray]:
    """Decode ``path`` frame by frame as ``[H, W, 3]`` uint8 RGB.

    Args:
        path: The video file.
        frames: Read at most this many frames. Defaults to None, all.
        reader: ``'decord'``, ``'opencv'``, or ``'auto'`` (default): decord, else OpenCV
            where decord is missing or cannot open the file.
    """
    if reader not in READERS:
        raise ValueError(f'reader must be one of {READERS}, got {reader!r}')
    if not Path(path).is_file():
        raise FileNotFoundError(f'video file not found: {path}')
    video = None
    if reader != 'opencv':
        try:
            import decord

            video = decord.VideoReader(path)
        except Exception:  # decord missing, or a container it cannot open
            if reader == 'decord':
                raise
    if video is not None:
        count = len(video) if frames is None else min(frames, len(video))
        for i in range(count):
            try:
                frame = video[i].asnumpy()
            except Exception as err:  # decord opens some non-videos, then cannot seek
                raise ValueError(f'cannot decode frame {i} of {path}: expected a video file '
                                 f'({err})') from err
            yield frame
        return
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f'cannot open video {path} with decord or OpenCV')
    try:
        read = 0
        while frames is None or read < frames:
            ok, frame = capture.read()
            if not ok:
                break
            read += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def to_tensor(frame: np.ndarray, size: int):
    """``[H, W, 3]`` uint8 RGB to a normalised ``[1, 3, size, size]`` float32 tensor."""
    import cv2
    import torch

    resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
    x = (resized.astype(np.float32) - np.float32(MEAN)) / np.float32(STD)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def _load(model: Any, path: str) -> Any:
    """Load ``path`` into the backbone ``model``; return the classifier ``(weight, bias)`` or
    None. A checkpoint that describes its model (``tsmnet finetune``, ``tsmnet.save``) must
    describe this backbone (the error says which options build it)."""
    from tsmnet.models.architecture import describe_backbone
    from tsmnet.weights.checkpoint import load_state_dict_checked
    from tsmnet.weights.saved import read_saved

    state_dict, info = read_saved(path)
    if info.architecture is not None:
        saved, built = info.architecture['backbone'], describe_backbone(model)
        differ = {k: v for k, v in saved.items() if k in _STRUCTURE and built.get(k) != v}
        if differ:
            wanted = ', '.join(f'{k}={v!r}' for k, v in differ.items())
            got = ', '.join(f'{k}={built.get(k)!r}' for k in differ)
            raise CommandError(f'--checkpoint {path} holds a {saved["type"]} with {wanted}; '
                               f'the stream built {got} (--arch, --depth, --shift-place, '
                               f'--shift-div choose it)')
    if any(k.startswith('backbone.') for k in state_dict):
        backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                    if k.startswith('backbone.')}
    else:
        backbone = {k: v for k, v in state_dict.items() if not k.startswith('cls_head.')}
    load_state_dict_checked(model, backbone, strict=True, source=path)
    weight = state_dict.get('cls_head.fc_cls.weight')
    if weight is None:
        return None
    bias = state_dict.get('cls_head.fc_cls.bias')
    return weight, bias


# what makes a saved backbone another network than the one --arch ... builds
_STRUCTURE = ('type', 'depth', 'widen_factor', 'arch', 'shift_place', 'shift_div', 'shift_mode',
              'is_shift', 'temporal_pool', 'non_local')


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


def run(args: argparse.Namespace) -> int:
    import torch

    from tsmnet.stream import TSMStream

    if args.frames is not None and args.frames < 1:
        raise CommandError(f'--frames must be >= 1, got {args.frames}')
    if args.size < 32:
        raise CommandError(f'--size must be >= 32, got {args.size}')
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    onnx_step = None
    if args.onnx:
        if args.checkpoint:
            raise CommandError('--checkpoint and --onnx exclude each other: the weights are '
                               'in the ONNX file')
        onnx_step = OnnxStep(args.onnx, args.threads)
        args.size, device, head = onnx_step.size, torch.device('cpu'), None
        step = onnx_step.step
        name = (f'an exported step {args.onnx} ({onnx_step.num_sites} shift sites, '
                f'ONNX Runtime)')
    else:
        model = build_backbone(args.arch, args.depth, args.shift_place, args.shift_div)
        head = _load(model, args.checkpoint) if args.checkpoint else None
        model.to(device).eval()
        if head is not None:
            head = tuple(None if t is None else t.to(device) for t in head)
        stream = TSMStream(model)
        step = stream.step
        name = (f'a causal MobileNetV2-TSM ({stream.num_sites} shift sites)'
                if args.arch == 'mobilenetv2' else
                f'a causal ResNet-{args.depth}-TSM ({args.shift_place}, {stream.num_sites} '
                f'shift sites)')
    source = args.video or 'a generated clip'
    frames = (read_video(args.video, args.frames, args.reader) if args.video
              else generated_clip(args.frames or 16, args.size))
    print(f'streaming {source} through {name} on {device}, {args.size}x{args.size}')

    records: list[dict[str, Any]] = []
    window: deque[torch.Tensor] = deque(maxlen=max(args.window, 1))
    for t, frame in enumerate(frames):
        x = to_tensor(frame, args.size).to(device)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        features = step(x)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        latency = time.perf_counter() - start
        record: dict[str, Any] = {'frame': t, 'ms': round(1e3 * latency, 3)}
        scores_out = onnx_step is not None and onnx_step.scores
        pooled = features.float()[0] if scores_out else features.float().mean(dim=(2, 3))[0]
        if scores_out:  # the step of a recogniser: the frame's class scores
            window.append(pooled.softmax(-1))
            scores = torch.stack(tuple(window)).mean(0)
            top = int(scores.argmax())
            record.update(top_class=top, score=round(float(scores[top]), 6))
            what = f'top class {top} ({record["score"]:.4f}, last {len(window)} frames)'
        elif head is None:
            top = int(pooled.argmax())
            record.update(top_feature=top, value=round(float(pooled[top]), 6))
            what = f'top feature {top} ({record["value"]:.4f})'
        else:
            weight, bias = head
            logits = pooled @ weight.float().t() + (0 if bias is None else bias.float())
            window.append(logits.softmax(-1))
            scores = torch.stack(tuple(window)).mean(0)
            top = int(scores.argmax())
            record.update(top_class=top, score=round(float(scores[top]), 6))
            what = f'top class {top} ({record["score"]:.4f}, last {len(window)} frames)'
        records.append(record)
        if not args.quiet:
            print(f'frame {t:4d}  {record["ms"]:8.2f} ms  {what}')
    if not records:
        raise CommandError(f'no frame could be read from {source}: expected a video file')

    latencies = sorted(r['ms'] for r in records[1:] or records)  # the first step allocates
    # interpolated, so never below the median however few frames there are
    p90 = (statistics.quantiles(latencies, n=10, method='inclusive')[-1]
           if len(latencies) > 1 else latencies[0])
    median = statistics.median(latencies)
    print(f'{len(records)} frames; per-frame latency median {median:.2f} ms, p90 {p90:.2f} ms '
          f'({1e3 / median:.1f} frames/s; first frame, which allocates the buffers, excluded)')
    if args.json_path:
        summary = {'source': source, 'arch': args.arch, 'depth': args.depth, 'size': args.size,
                   'onnx': args.onnx,
                   'device': str(device), 'median_ms': median, 'p90_ms': p90,
                   'frames': records}
        write_text(args.json_path, json.dumps(summary, indent=1) + '\n')
    return 0
