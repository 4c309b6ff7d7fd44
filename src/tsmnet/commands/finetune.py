"""``tsmnet finetune DATA_DIR --model NAME``: fine-tune a zoo model on a folder of videos.

DATA_DIR holds one sub-folder per class, named after it, of video files. A stratified part
(``--val-split``) is held out for validation. Training follows MMAction2's TSM pipeline: one
frame at a random place in each of the model's segments, the short side resized to SIZE * 8 / 7,
a multi-scale crop resized to SIZE (plus a horizontal flip with ``--flip``: leave it off when
left and right matter, as in Something-Something); validation takes the middle frames and the
centre crop. Only the sampled frames of each video are decoded, by ``--workers`` DataLoader
processes, so memory does not grow with the data.

Each epoch writes ``last.pth`` (``--resume`` continues from it) and, when validation improves,
``best.pth``; the end writes ``checkpoint.pth`` (the best epoch, MMAction2's layout
``{'state_dict', 'meta'}``, loadable by MMAction2's ``Recognizer2D`` and by ``tsmnet predict
--weights``), ``labels.txt``, ``history.json`` and ``finetune.png``.

Many processes: ``torchrun --nproc_per_node=N -m tsmnet finetune ...`` (gloo on the CPU, NCCL
on GPUs; ``--batch`` is per process); several machines: ``torchrun --nnodes 2
--nproc_per_node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT -m tsmnet finetune ...`` on
each. Only rank 0 writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..archs import RESNET_DEPTHS
from .errors import CommandError
from .options import DEFAULT_MODEL

HEADER = f'{"epoch":>5}  {"train loss":>10}  {"train acc":>9}  {"val acc":>7}  {"time s":>6}'


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'finetune', help='fine-tune a zoo model on a folder of videos (one sub-folder per class)',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_dir', metavar='DATA_DIR', help='one sub-folder of videos per class')
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help=f'zoo entry to start from (default: {DEFAULT_MODEL})')
    parser.add_argument('--weights', default=None,
                        help="initial weights: a checkpoint file or URL, 'none' to train from "
                             "scratch (default: the entry's published weights)")
    parser.add_argument('--epochs', type=int, default=10, help='epochs (default: 10)')
    parser.add_argument('--batch', type=int, default=8,
                        help='clips per step and process (default: 8)')
    parser.add_argument('--lr', type=float, default=1e-3,
                        help='peak learning rate, one-cycle schedule (default: 1e-3)')
    parser.add_argument('--weight-decay', type=float, default=1e-4)
    parser.add_argument('--optimizer', choices=('adamw', 'sgd'), default='adamw',
                        help='AdamW, or SGD with momentum 0.9 (MMAction2\'s TSM configs) '
                             '(default: adamw)')
    parser.add_argument('--val-split', type=float, default=0.2,
                        help='fraction of each class held out for validation (default: 0.2)')
    parser.add_argument('--size', type=int, default=None,
                        help="crop side in pixels (default: the entry's, e.g. 224); the short "
                             'side is resized to SIZE * 8 / 7 first')
    parser.add_argument('--flip', action='store_true',
                        help='random horizontal flips (for classes that do not depend on left '
                             'and right)')
    norms = parser.add_mutually_exclusive_group()
    norms.add_argument('--partial-bn', action='store_true',
                       help="TSM's partial BN: all batch norms but the first keep their "
                            'pretrained statistics and affine weights (small datasets)')
    norms.add_argument('--frozen-bn', action='store_true',
                       help='every batch norm keeps its statistics and weights')
    parser.add_argument('--frozen-stages', type=int, default=-1,
                        help='freeze the stem and this many stages (default: -1, none)')
    parser.add_argument('--no-shift', action='store_true',
                        help='TSN baseline: the same network without temporal shift')
    parser.add_argument('--shift-mode', choices=('bidirectional', 'causal'),
                        default='bidirectional',
                        help="'causal' trains an online model (tsmnet stream): one fold from "
                             'the past only (default: bidirectional)')
    parser.add_argument('--depth', type=int, default=None, choices=RESNET_DEPTHS,
                        help="ResNet depth instead of the entry's (from scratch only)")
    parser.add_argument('--dropout', type=float, default=None,
                        help="head dropout (default: the entry's, 0.5)")
    parser.add_argument('--out', default='tsmnet_finetune', help='output folder')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='LAST_PTH',
                        help='continue an interrupted run from LAST_PTH (default: '
                             'OUT/last.pth)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu',
                        help="torch device: 'cpu' or 'cuda' (default: cpu)")
    parser.add_argument('--workers', type=int, default=None,
                        help='DataLoader worker processes per process (default: min(4, '
                             'cores per process); 0: read in the training process)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bf16 on the CPU, bf16 or fp16 on CUDA')
    parser.add_argument('--skip-bad-videos', action='store_true',
                        help='skip videos that cannot be read (counted and reported) instead '
                             'of stopping')
    parser.add_argument('--quiet', action='store_true', help='no progress bar, no table')
    parser.set_defaults(func=run)


def format_row(r: Any) -> str:
    val = '-' if r.val_acc is None else f'{r.val_acc:.3f}'
    return f'{r.epoch:>5}  {r.train_loss:>10.4f}  {r.train_acc:>9.3f}  {val:>7}  {r.seconds:>6.1f}'


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data import DataSourceError
    from ..train import ConfigError, FinetuneConfig, finetune
    from ..video import VideoError
    from ..weights.zoo import UnknownModelError

    if not Path(args.data_dir).is_dir():
        raise CommandError(f'DATA_DIR is not a folder: {args.data_dir}')
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f'--threads must be >= 1, got {args.threads}')
        torch.set_num_threads(args.threads)
    try:
        options = {name: getattr(args, name) for name in (
            'data_dir', 'model', 'weights', 'epochs', 'batch', 'lr', 'weight_decay', 'optimizer',
            'val_split', 'size', 'flip', 'partial_bn', 'frozen_bn', 'frozen_stages', 'no_shift',
            'shift_mode', 'depth', 'dropout', 'out', 'seed', 'device', 'workers', 'amp',
            'resume')}
        cfg = FinetuneConfig(**options, on_error='skip' if args.skip_bad_videos else 'raise')
    except ConfigError as err:
        raise CommandError(f'--{err.field.replace("_", "-")} {err.message}') from None
    if args.resume == 'auto' and not (Path(args.out) / 'last.pth').is_file():
        raise CommandError(f'--resume: no {Path(args.out) / "last.pth"} to resume from')
    try:
        if args.quiet:
            result = finetune(cfg)
        else:
            result = _with_progress(cfg, finetune)
    except UnknownModelError as err:
        raise CommandError(f'--model {args.model}: {err}') from None
    except (DataSourceError, VideoError) as err:
        raise CommandError(str(err)) from None
    except (TypeError, ValueError) as err:
        raise CommandError(f'--model {args.model}: {err}') from None
    if not result.files:  # not rank 0
        return 0
    final = result.history[-1]
    print(f'{len(result.classes)} classes, {result.train_videos} training and '
          f'{result.val_videos} validation videos; final val acc '
          f'{"-" if final.val_acc is None else f"{final.val_acc:.3f}"}; wrote '
          f'{result.files["checkpoint"]}, {result.files["labels"]}, {result.files["plot"]}')
    if result.skipped:
        print(f'skipped {len(result.skipped)} unreadable videos: {", ".join(result.skipped)}')
    return 0


def _with_progress(cfg: Any, finetune: Any) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console()
    console.print(HEADER, highlight=False)
    with Progress('[progress.description]{task.description}', BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task('training', total=None)
        return finetune(
            cfg, on_epoch=lambda r: console.print(format_row(r), highlight=False),
            progress=lambda done, total: bar.update(task, completed=done, total=total))
