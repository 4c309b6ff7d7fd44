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
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..fileio import write_text
from ..fuse import fuse_conv_bn
from ..models.factory import create_model
from ..models.recognizer import Recognizer
from ..models.saving import load
from ..video import TestProtocol, VideoError, VideoTransform, probe, read_sampled
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
LOGGER = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'predict', help='classify videos with a zoo model (top-K labels and probabilities)',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('videos', nargs='+', metavar='VIDEO', help='video files')
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
    parser.add_argument('--json', dest='json_path', help='write the results as JSON')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
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
    """

    def __init__(self, model: Recognizer, protocol: TestProtocol, labels: Sequence[str],
                 device: torch.device | str = 'cpu', batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError(f'batch must be >= 1, got {batch}')
        self.device = torch.device(device)
        model = fuse_conv_bn(model.eval(), inplace=True).to(self.device)
        self.channels_last = self.device.type == 'cpu'
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last \
            else model
        self.protocol, self.labels, self.batch = protocol, list(labels), batch
        self.transform = VideoTransform(protocol)

    @torch.inference_mode()
    def scores(self, views: torch.Tensor) -> torch.Tensor:
        """Class scores of one video's views ``[V, T, 3, H, W]``, averaged: ``[num_classes]``."""
        logits = []
        for start in range(0, len(views), self.batch):
            chunk = views[start:start + self.batch].to(self.device)
            if self.channels_last:  # [B, T, 3, H, W] -> frames laid out channels-last
                b, t = chunk.shape[:2]
                chunk = chunk.flatten(0, 1).contiguous(memory_format=torch.channels_last) \
                    .unflatten(0, (b, t))
            logits.append(self.model(chunk).float().cpu())
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
                    device: str = 'cpu', batch: int = DEFAULT_BATCH) -> Predictor:
    """The :class:`Predictor` of a zoo entry with its published weights, or of
    ``weights_source``: a checkpoint or folder that describes its model (``tsmnet finetune``,
    ``tsmnet.save``; ``model_name`` is not needed) is rebuilt by :func:`tsmnet.load`, with its
    class names and test protocol; any other checkpoint is loaded into ``model_name``'s
    architecture with the checkpoint's own head."""
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
    return Predictor(model, protocol, labels, device=device, batch=batch)


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


def format_prediction(p: Prediction) -> str:
    width = max(len(label) for _, label, _ in p.top)
    stages = ', '.join(f'{stage} {seconds:.2f} s' for stage, seconds in p.seconds.items())
    lines = [f'{p.video}  ({p.views} views, {stages})']
    lines += [f'  {rank}. {label.ljust(width)}  {prob:.4f}'
              for rank, (_, label, prob) in enumerate(p.top, 1)]
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise CommandError(f'--top must be >= 1, got {args.top}')
    for video in args.videos:  # every video readable before a model is built or downloaded
        if not Path(video).is_file():
            raise CommandError(f'video not found: {video}')
        try:
            probe(video)
        except VideoError as err:
            raise CommandError(str(err)) from None
    parse_views(args.views)
    with _threads(args.threads):
        predictor = build_predictor(args.model, args.weights, args.labels, args.views,
                                    args.device, args.batch)
        results = []
        for video in args.videos:
            try:
                prediction = predictor(video, args.top)
            except VideoError as err:
                raise CommandError(str(err)) from None
            print(format_prediction(prediction))
            results.append(prediction)
    if args.json_path:
        write_text(Path(args.json_path), json.dumps({
            'model': args.model, 'weights': args.weights, 'protocol': asdict(predictor.protocol),
            'videos': [{'video': p.video, 'views': p.views, 'seconds': p.seconds,
                        'top': [{'index': i, 'label': label, 'prob': prob}
                                for i, label, prob in p.top]} for p in results]}, indent=1))
    return 0
