"""``tsmnet demo``: train ResNetTSM and the same network without shifts on clips whose label
is the order of their frames, and show that only the shift can learn it."""

from __future__ import annotations

import argparse
from typing import Any

from ..archs import RESNET_DEPTHS
from .errors import CommandError
from .options import add_threads, set_threads

DESCRIPTION = """\
Make a synthetic video task (an object moving right or left; a clip of one class is a clip
of the other played backwards, so both classes hold the same frames), train ResNetTSM and
the same network with is_shift=False (TSN-style per-frame averaging) side by side with the
same weights, batches and budget, then print a table and write results.json and demo.png
(training curves and example clips) to the output folder. Needs no download; the defaults
take a few minutes on a 2-core CPU."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..demo.config import DemoConfig

    d = DemoConfig()
    parser = subparsers.add_parser(
        'demo', help='TSM vs per-frame averaging on a task only temporal order can solve',
        description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--steps', type=int, default=d.steps, help='training steps per model')
    parser.add_argument('--depth', type=int, default=d.depth, choices=RESNET_DEPTHS,
                        help='ResNet depth')
    parser.add_argument('--num-segments', type=int, default=d.num_segments,
                        help='frames per clip')
    parser.add_argument('--size', type=int, default=d.size, help='frame height and width')
    parser.add_argument('--batch', type=int, default=d.batch_size, help='clips per step')
    parser.add_argument('--lr', type=float, default=d.lr, help='peak AdamW learning rate')
    parser.add_argument('--val-pairs', type=int, default=d.val_pairs,
                        help='validation clips, each also played backwards')
    parser.add_argument('--out', default=d.out, help='output folder')
    parser.add_argument('--device', default=d.device, help="torch device, e.g. 'cuda'")
    add_threads(parser)
    parser.add_argument('--seed', type=int, default=d.seed, help='seed of data and weights')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--online', action='store_true',
                        help='instead: train a causal TSM (shift_mode=causal), stream the '
                             'validation clips frame by frame with TSMStream and show accuracy '
                             'vs frames seen against the offline model (online.json, '
                             'online.png)')
    parser.add_argument('--arch', default='resnet', choices=('resnet', 'mobilenetv2'),
                        help='backbone of --online: ResNet of --depth, or MobileNetV2-TSM')
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..demo.config import DemoConfig
    from ..demo.train import format_table, run_demo

    set_threads(args.threads)
    try:
        cfg = DemoConfig(steps=args.steps, depth=args.depth, num_segments=args.num_segments,
                         size=args.size, batch_size=args.batch, lr=args.lr,
                         val_pairs=args.val_pairs, seed=args.seed, device=args.device,
                         out=args.out)
    except ValueError as err:
        raise CommandError(str(err)) from err
    console = Console()
    if args.online:
        return _run_online(cfg, args, console)
    console.print(
        f'Task: clips of {cfg.num_segments} frames, {cfg.size}x{cfg.size}: an object moves right '
        f'(class 0) or left\n(class 1 = class 0 played backwards: both classes hold the same '
        f'frames).\nTraining ResNet-{cfg.depth} with is_shift=True (TSM) and is_shift=False '
        f'(TSN),\nsame initial weights and batches: {cfg.steps} steps of {cfg.batch_size} clips '
        f'on {cfg.device}.', highlight=False)
    progress = Progress(
        TextColumn('{task.description}'), BarColumn(bar_width=24), MofNCompleteColumn(),
        TextColumn('loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.2f}  '
                   'val {task.fields[val]}'),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        disable=args.no_progress)
    with progress:
        tasks = {name: progress.add_task(label, total=cfg.steps, loss=float('nan'),
                                         acc=float('nan'), val='-')
                 for name, label in (('tsm', 'TSM'), ('tsn', 'TSN'))}

        def on_step(step: int, stats: dict[str, dict[str, float]]) -> None:
            for name, task in tasks.items():
                s = stats[name]
                val = f'{s["val_acc"]:.2f}' if 'val_acc' in s else '-'
                progress.update(task, completed=step, loss=s['loss'], acc=s['acc'], val=val)

        results = run_demo(cfg, on_step=on_step)
    console.print(format_table(results), highlight=False)
    console.print(f'total {results["total_time_s"]:.0f} s; wrote {results["files"]["results"]} '
                  f'and {results["files"]["plot"]}', highlight=False)
    return 0


def _run_online(cfg: Any, args: argparse.Namespace, console: Any) -> int:
    """``tsmnet demo --online``: train the causal model, then stream the validation clips."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..demo.online import format_online_table, run_online_demo

    name = 'MobileNetV2-TSM' if args.arch == 'mobilenetv2' else f'ResNet-{cfg.depth}-TSM'
    console.print(
        f'Task: clips of {cfg.num_segments} frames, {cfg.size}x{cfg.size}: an object moves right '
        f'(class 0) or left (class 1).\nTraining a causal {name} (each frame reads the past '
        f'only): {cfg.steps} steps of {cfg.batch_size} clips on {cfg.device}; then streaming '
        f'the {2 * cfg.val_pairs} validation clips one frame at a time.', highlight=False)
    progress = Progress(TextColumn('{task.description}'), BarColumn(bar_width=24),
                        MofNCompleteColumn(),
                        TextColumn('loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.2f}'),
                        TimeElapsedColumn(), console=console, disable=args.no_progress)
    with progress:
        task = progress.add_task('causal TSM', total=cfg.steps, loss=float('nan'),
                                 acc=float('nan'))

        def on_step(step: int, stats: dict[str, float]) -> None:
            progress.update(task, completed=step, loss=stats['loss'], acc=stats['acc'])

        results = run_online_demo(cfg, arch=args.arch, on_step=on_step)
    console.print(format_online_table(results), highlight=False)
    console.print(f'total {results["total_time_s"]:.0f} s; wrote {results["files"]["results"]} '
                  f'and {results["files"]["plot"]}', highlight=False)
    return 0
