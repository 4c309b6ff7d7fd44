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
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

from .errors import CommandError
from .options import DEFAULT_MODEL, add_threads, library_errors, threads
from .options import predictor as build_predictor

if TYPE_CHECKING:
    from ..predictor import Prediction
    from ..video import ResultWriter, VideoResult

# views per forward pass (tsmnet.predictor.DEFAULT_BATCH, which says why; here so that --help
# imports no torch)
DEFAULT_BATCH = 4
# decoding processes for several videos (the model's own threads take the other cores)
DEFAULT_WORKERS = 2
# exit status when videos failed: this + their number (capped at 255), apart from argparse's 2
EXIT_FAILED = 100

__all__ = ['DEFAULT_BATCH', 'DEFAULT_MODEL', 'DEFAULT_WORKERS', 'EXIT_FAILED', 'add_parser',
           'format_prediction', 'run']


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
    add_threads(parser)
    parser.epilog = ('exit status: 0 when every video was scored; 100 + the number of videos '
                     'that could not be read (at most 255) when some were not; 2 for a bad '
                     'command line.')
    parser.set_defaults(func=run)


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
    from ..video import ResultWriter

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
    from ..predictor import parse_views
    from ..progress import ProgressReport
    from ..stdout import results_stdout
    from ..video import find_videos, predict_videos

    if args.top < 1:
        raise CommandError(f'--top must be >= 1, got {args.top}')
    if args.workers is not None and args.workers < 0:
        raise CommandError(f'--workers must be >= 0, got {args.workers}')
    try:  # every argument expands before a model is built or downloaded
        videos = find_videos([*args.videos, *(f'@{path}' for path in args.list)])
    except ValueError as err:
        raise CommandError(str(err)) from None
    with library_errors():
        parse_views(args.views)
    workers = args.workers if args.workers is not None else \
        (0 if len(videos) == 1 else DEFAULT_WORKERS)
    targets = _targets(args)
    to_stdout = any(path == '-' for _, path in targets)
    human = sys.stderr if to_stdout else sys.stdout  # human output goes where results do not
    with threads(args.threads), results_stdout(to_stdout) as stdout:
        predictor = build_predictor(args.model, args.weights, args.labels, views=args.views,
                                    device=args.device, batch=args.batch, runtime=args.runtime,
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
