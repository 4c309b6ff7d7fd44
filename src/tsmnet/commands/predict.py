"""``tsmnet predict VIDEO...``: classify videos with a zoo model, as MMAction2's test step does.

Each video is read with the model's test protocol (MMAction2's ``test_pipeline``: segments,
``Resize(-1, 256)``, center / three / ten crops, its mean and std), every view (clips x crops)
is scored and the views are averaged per ``average_clips``: the scores equal MMAction2's
``inference_recognizer`` on the same video, config and checkpoint. ``--weights`` takes a
checkpoint of MMAction2's layout (a release, or what ``tsmnet finetune`` writes; its class
names come from the ``labels.txt`` beside it or its ``meta``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from ..deploy.runtime import clip_runner
from ..fuse import fuse_conv_bn
from ..models.factory import create_model
from ..models.frames import channels_last_clips
from ..models.recognizer import Recognizer
from ..models.saving import load
from ..progress import ProgressReport
from ..stdout import results_stdout
from ..video import (
    ResultWriter,
    TestProtocol,
    VideoResult,
    VideoTransform,
    find_videos,
    predict_videos,
    read_sampled,
)
from ..weights.saved import read_saved
from ..weights.zoo import weights
from .errors import CommandError

DEFAULT_MODEL = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
# Views per forward pass. Swept on the shared 2-core Xeon, channels-last (2026-12-02, load
# 2-7, interleaved): 1 and 2 views per pass were 1.42x and 1.20x slower than 4 on 16 views;
# 8 and 16 were faster there (0.83x, 0.79x) but not on all 80 views (8: 1.01x; 16, 20, 40:
# 1.2-1.4x, one repeat), so 4 stays until a quiet machine settles it. Contiguous (not
# channels-last) was 1.35x slower at 4.
DEFAULT_BATCH = 4
# decoding processes for several videos (the model's own threads take the other cores)
DEFAULT_WORKERS = 2
# exit status when videos failed: this + their number (capped at 255), apart from argparse's 2
EXIT_FAILED = 100
LOGGER = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'predict', help='classify videos with a zoo model (top-K labels and probabilities)',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('videos', nargs='*', metavar='VIDEO',
                        help='video files, folders (searched recursively for video files), '
                             "glob patterns ('clips/**/*.mp4') or @FILE: a list of paths, one "
                             'a line')
    parser.add_argument('--list', action='append', default=[], metavar='FILE',
                        help='a file listing videos, one path a line (as @FILE; repeatable)')
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help='zoo entry: architecture, test protocol and labels (tsmnet.'
                             f'list_models(); default: {DEFAULT_MODEL})')
    parser.add_argument('--weights', help="checkpoint file or URL in MMAction2's layout "
                        "(default: the entry's published weights, downloaded once)")
    parser.add_argument('--labels', help='class names, one a line (default: labels.txt beside '
                        "--weights, its meta, or the entry's)")
    parser.add_argument('--top', type=int, default=5, help='labels shown per video (default: 5)')
    parser.add_argument('--views', help='CLIPS,CROPS instead of the protocol\'s views: CLIPS '
                        'temporal clips (1; 2 with twice sampling; dense sampling: its start '
                        'positions) x CROPS of 1, 3 or 10 (e.g. 1,1: one clip, one center '
                        'crop; faster, slightly less accurate)')
    parser.add_argument('--batch', type=int, default=DEFAULT_BATCH,
                        help=f'views scored per forward pass (default: {DEFAULT_BATCH}; memory '
                             'vs speed)')
    parser.add_argument('--json', dest='json_path', metavar='PATH',
                        help="write the results as one JSON document ('-': standard output)")
    parser.add_argument('--jsonl', dest='jsonl_path', metavar='PATH',
                        help="write one JSON line per video as it is scored ('-': standard "
                             'output)')
    parser.add_argument('--csv', dest='csv_path', metavar='PATH',
                        help="write one CSV row per video as it is scored ('-': standard "
                             'output)')
    parser.add_argument('--workers', type=int, default=None,
                        help='processes that decode the next videos while the model runs '
                             f'(default: 0 for one video, else {DEFAULT_WORKERS})')
    parser.add_argument('--quiet', action='store_true',
                        help='print no per-video lines (progress and the summary only)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--runtime', default='eager',
                        choices=('eager', 'compile', 'onnxruntime', 'openvino'),
                        help='what runs the model: PyTorch (eager), torch.compile, or the model '
                             'exported at the crop size to ONNX Runtime or OpenVINO, checked '
                             'against eager first (default: eager)')
    parser.add_argument('--precision', default=None, choices=('fp32', 'bf16', 'int8'),
                        help="the runtime's precision where it has it (default: fp32)")
    parser.add_argument('--calibration', metavar='DIR',
                        help='videos that calibrate --precision int8')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.epilog = ('exit status: 0 when every video was scored; 100 + the number of videos '
                     'that could not be read (at most 255) when some were not; 2 for a bad '
                     'command line.')
    parser.set_defaults(func=run)


def parse_views(text: str | None) -> tuple[int | None, int | None]:
    """``'CLIPS,CROPS'`` as two positive ints (None, None when not given)."""
    if text is None:
        return None, None
    parts = text.split(',')
    try:
        clips, crops = (int(p) for p in parts)
    except ValueError:
        raise CommandError(f'--views must be CLIPS,CROPS (two integers), got {text!r}') from None
    if clips < 1 or crops not in (1, 3, 10):
        raise CommandError(f'--views: CLIPS must be >= 1 and CROPS 1, 3 or 10, got {text!r}')
    return clips, crops


def read_labels(path: Path) -> list[str]:
    """Class names from a text file, one a line (blank lines ignored)."""
    try:
        lines = path.read_text(encoding='utf-8').splitlines()
    except OSError as err:
        raise CommandError(f'--labels: cannot read {path}: {err.strerror or err}') from None
    return [line.strip() for line in lines if line.strip()]


@dataclass
class Prediction:
    """One video's result: the top classes and the time of each stage (seconds)."""

    video: str
    top: list[tuple[int, str, float]]
    views: int
    seconds: dict[str, float] = field(default_factory=dict)


class Predictor:
    """A recognizer ready for inference and its protocol: video file -> averaged scores.

    The model runs in eval mode with its batch norms folded into the convs and channels-last
    activations (the same function, faster on CPUs), ``batch`` views per forward pass. The
    model is changed in place: it is one to run, not to train or save.

    Args:
        model: The recognizer (its ``cls_head.average_clips`` averages the views).
        protocol: How videos are read.
        labels: Class names in index order.
        device: Where the model runs.
        batch: Views per forward pass.
        runtime: What runs the views (:data:`tsmnet.deploy.runtime.RUNTIMES`): ``'eager'``,
            ``'compile'``, or the model exported to ``'onnxruntime'`` / ``'openvino'`` at the
            protocol's crop size (checked against eager on export).
        precision: ``'fp32'``, ``'bf16'`` or ``'int8'`` where the runtime has it.
        calibration: int8's calibration clips or folder of videos.
        threads: ONNX Runtime's or OpenVINO's CPU threads.
    """

    def __init__(self, model: Recognizer, protocol: TestProtocol, labels: Sequence[str],
                 device: torch.device | str = 'cpu', batch: int = DEFAULT_BATCH,
                 runtime: str = 'eager', precision: str | None = None,
                 calibration: Any = None, threads: int | None = None) -> None:
        if batch < 1:
            raise ValueError(f'batch must be >= 1, got {batch}')
        self.device = torch.device(device)
        model = fuse_conv_bn(model.eval(), inplace=True).to(self.device)
        self.channels_last = self.device.type == 'cpu'
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last \
            else model
        self.protocol, self.labels, self.batch = protocol, list(labels), batch
        self.transform = VideoTransform(protocol)
        # the runner of the views: eager is the model itself (what MMAction2's test step runs)
        self.run = clip_runner(self.model, runtime, precision, threads=threads,
                               size=protocol.crop_size, calibration=calibration)
        self.runtime, self.precision = self.run.runtime, self.run.precision

    @torch.inference_mode()
    def scores(self, views: torch.Tensor) -> torch.Tensor:
        """Class scores of one video's views ``[V, T, 3, H, W]``, averaged: ``[num_classes]``."""
        logits = []
        for start in range(0, len(views), self.batch):
            chunk = views[start:start + self.batch].to(self.device)
            if self.channels_last:
                chunk = channels_last_clips(chunk)
            logits.append(self.run(chunk).float().cpu())
        logits = torch.cat(logits)
        if self.model.cls_head.average_clips is None:  # MMAction2 would not average: the mean
            return logits.mean(0)
        return self.model.cls_head.average_clip(logits, len(views)).reshape(-1)

    def __call__(self, path: str | Path, top: int = 5) -> Prediction:
        """Top-``top`` classes of one video, and the seconds of its decode, transforms and
        model stages (what ``benchmarks/bench_predict.py`` times)."""
        tic = time.perf_counter()
        frames = read_sampled(path, self.protocol)
        decoded = time.perf_counter()
        views = self.transform.from_sampled(frames)
        transformed = time.perf_counter()
        scores = self.scores(views)
        done = time.perf_counter()
        values, indices = scores.topk(min(top, scores.numel()))
        return Prediction(str(path), [(int(i), self.labels[i], float(v))
                                      for v, i in zip(values.tolist(), indices.tolist())],
                          len(views), {'decode': decoded - tic, 'transforms': transformed - decoded,
                                       'model': done - transformed})


def build_predictor(model_name: str, weights_source: str | None = None,
                    labels_path: str | None = None, views: str | None = None,
                    device: str = 'cpu', batch: int = DEFAULT_BATCH,
                    **runtime: Any) -> Predictor:
    """The :class:`Predictor` of a zoo entry with its published weights, or of
    ``weights_source``: a checkpoint or folder that describes its model (``tsmnet finetune``,
    ``tsmnet.save``; ``model_name`` is not needed) is rebuilt by :func:`tsmnet.load`, with its
    class names and test protocol; any other checkpoint is loaded into ``model_name``'s
    architecture with the checkpoint's own head. ``runtime``: :class:`Predictor`'s
    ``runtime``, ``precision``, ``calibration`` and ``threads``."""
    if weights_source is None:
        model = _named(model_name, pretrained=True)
    else:
        local = '://' not in weights_source
        if local and not Path(weights_source).exists():
            raise CommandError(f'--weights: no such file or folder: {weights_source}')
        info = read_saved(weights_source)[1] if local else None
        if info is None or info.architecture is not None:  # a URL is read by tsmnet.load too
            try:
                model = load(weights_source)
            except ValueError as err:
                if 'does not describe' not in str(err):
                    raise
                model = _named(model_name, pretrained=weights_source)
        else:  # its own head: the checkpoint's classes, not the entry's
            model = _named(model_name, pretrained=weights_source, num_classes=info.num_classes)
        if local and labels_path is None and Path(weights_source).is_file() and \
                (Path(weights_source).parent / 'labels.txt').is_file():
            labels_path = str(Path(weights_source).parent / 'labels.txt')
    protocol = (model.protocol or TestProtocol()).with_views(*parse_views(views))
    names = read_labels(Path(labels_path)) if labels_path is not None else model.class_names
    if names is not None and len(names) != model.num_classes:
        raise CommandError(f'{len(names)} class names for a model of {model.num_classes} '
                           'classes')
    labels = names or [f'class {i}' for i in range(model.num_classes)]
    try:
        return Predictor(model, protocol, labels, device=device, batch=batch, **runtime)
    except ValueError as err:  # a runtime or precision it does not have, int8 uncalibrated
        raise CommandError(f'--runtime/--precision: {err}') from None


def _named(name: str, **kwargs: Any) -> Recognizer:
    """``create_model(name, ...)``, an unknown name reported as ``--model``'s."""
    try:
        weights(name)
    except (KeyError, ValueError) as err:
        raise CommandError(f'--model: {err}') from None
    return create_model(name, **kwargs)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if n is not None:
        if n < 1:
            raise CommandError(f'--threads must be >= 1, got {n}')
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def format_prediction(p: Prediction | VideoResult) -> str:
    """A video's result as the lines ``tsmnet predict`` prints."""
    if getattr(p, 'error', None) is not None:
        return f'{p.video}  FAILED: {p.error}'
    width = max(len(label) for _, label, _ in p.top)
    stages = ', '.join(f'{stage} {seconds:.2f} s' for stage, seconds in p.seconds.items())
    lines = [f'{p.video}  ({p.views} views, {stages})']
    lines += [f'  {rank}. {label.ljust(width)}  {prob:.4f}'
              for rank, (_, label, prob) in enumerate(p.top, 1)]
    return '\n'.join(lines)


def _targets(args: argparse.Namespace) -> list[tuple[str, str]]:
    targets = [(kind, path) for kind, path in (('json', args.json_path),
                                               ('jsonl', args.jsonl_path),
                                               ('csv', args.csv_path)) if path]
    if sum(path == '-' for _, path in targets) > 1:
        raise CommandError('only one of --json, --jsonl, --csv can write to standard output '
                           "('-')")
    return targets


def _writers(args: argparse.Namespace, targets: list[tuple[str, str]], stdout: TextIO,
             header: dict[str, Any]) -> list[ResultWriter]:
    writers: list[ResultWriter] = []
    try:
        for kind, path in targets:
            writers.append(ResultWriter(kind, stdout if path == '-' else path, header,
                                        args.top))
    except ValueError as err:
        for writer in writers:
            writer.close()
        raise CommandError(str(err)) from None
    return writers


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise CommandError(f'--top must be >= 1, got {args.top}')
    if args.workers is not None and args.workers < 0:
        raise CommandError(f'--workers must be >= 0, got {args.workers}')
    try:  # every argument expands before a model is built or downloaded
        videos = find_videos([*args.videos, *(f'@{path}' for path in args.list)])
    except ValueError as err:
        raise CommandError(str(err)) from None
    parse_views(args.views)
    workers = args.workers if args.workers is not None else \
        (0 if len(videos) == 1 else DEFAULT_WORKERS)
    targets = _targets(args)
    to_stdout = any(path == '-' for _, path in targets)
    human = sys.stderr if to_stdout else sys.stdout  # human output goes where results do not
    with _threads(args.threads), results_stdout(to_stdout) as stdout:
        predictor = build_predictor(args.model, args.weights, args.labels, args.views,
                                    args.device, args.batch, runtime=args.runtime,
                                    precision=args.precision, calibration=args.calibration,
                                    threads=args.threads)
        header = {'model': args.model, 'weights': args.weights,
                  'runtime': predictor.runtime, 'precision': predictor.precision,
                  'protocol': asdict(predictor.protocol)}
        writers = _writers(args, targets, stdout, header)
        failed = 0
        try:
            with ProgressReport(len(videos), 'videos') as progress:
                for result in predict_videos(videos, predictor.scores, predictor.protocol,
                                             predictor.labels, args.top, workers):
                    failed += not result.ok
                    for writer in writers:
                        writer.write(result)
                    if not args.quiet or not result.ok:
                        progress.print(format_prediction(result), human)
                    progress.advance(failed=not result.ok)
        finally:
            for writer in writers:
                writer.close({'failed': failed})
    if failed:
        progress.print(f'{failed} of {len(videos)} videos could not be read', sys.stderr)
        return min(EXIT_FAILED + failed, 255)
    return 0
