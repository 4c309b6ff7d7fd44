"""``tsmnet finetune DATA_DIR --model NAME``: fine-tune a zoo model on a folder of videos.

DATA_DIR holds one sub-folder per class, named after it, of video files. A stratified part
(``--val-split``) is held out for validation. Training samples one frame at a random place
in each of the model's segments (TSM's sampling), resizes the short side and takes a random
square crop (plus a horizontal flip with ``--flip``: leave it off when left and right matter,
as in Something-Something); validation takes the middle frames and the center crop. Each
epoch shows a progress bar, then a row of the accuracy table; the end writes to ``--out``
``checkpoint.pth`` (MMAction2's layout: ``{'state_dict', 'meta'}``, loadable by MMAction2's
``Recognizer2D`` and by ``tsmnet predict --weights``), ``labels.txt``, ``history.json`` and
``finetune.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._torch_compat import BatchNormBase
from .._version import __version__
from ..archs import RESNET_DEPTHS
from ..demo.train import flush_denormals
from ..fileio import atomic_write, write_text
from ..models.factory import create_model
from ..models.recognizer import Recognizer
from ..video import TestProtocol, VideoError, read_frames
from ..video import transforms as T
from ..video.sampling import sample_frames, train_sample_frames
from ..weights.zoo import weights
from .errors import CommandError
from .predict import DEFAULT_MODEL, build_architecture

LOGGER = logging.getLogger(__name__)
VIDEO_SUFFIXES = frozenset({'.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v', '.mpg', '.mpeg',
                            '.wmv', '.flv', '.ogv', '.3gp', '.ts', '.gif'})


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
    parser.add_argument('--batch', type=int, default=8, help='clips per step (default: 8)')
    parser.add_argument('--lr', type=float, default=1e-3,
                        help='peak AdamW learning rate, one-cycle schedule (default: 1e-3)')
    parser.add_argument('--weight-decay', type=float, default=1e-4)
    parser.add_argument('--val-split', type=float, default=0.2,
                        help='fraction of each class held out for validation (default: 0.2)')
    parser.add_argument('--size', type=int, default=None,
                        help="crop side in pixels (default: the entry's, e.g. 224); the short "
                             'side is resized to SIZE * 8 / 7 first')
    parser.add_argument('--flip', action='store_true',
                        help='random horizontal flips (for classes that do not depend on left '
                             'and right)')
    parser.add_argument('--partial-bn', action='store_true',
                        help="TSM's partial BN: all batch norms but the first keep their "
                             'pretrained statistics and affine weights (small datasets)')
    parser.add_argument('--frozen-stages', type=int, default=-1,
                        help='freeze the stem and this many stages (default: -1, none)')
    parser.add_argument('--no-shift', action='store_true',
                        help='TSN baseline: the same network without temporal shift')
    parser.add_argument('--depth', type=int, default=None, choices=RESNET_DEPTHS,
                        help="ResNet depth instead of the entry's (from scratch only)")
    parser.add_argument('--dropout', type=float, default=None,
                        help="head dropout (default: the entry's, 0.5)")
    parser.add_argument('--out', default='tsmnet_finetune', help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--quiet', action='store_true', help='no progress bar, no table')
    parser.set_defaults(func=run)


@dataclass
class FinetuneConfig:
    """Settings of :func:`finetune` (the command's options)."""

    data_dir: str
    model: str = DEFAULT_MODEL
    weights: str | None = None
    epochs: int = 10
    batch: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_split: float = 0.2
    size: int | None = None
    flip: bool = False
    partial_bn: bool = False
    frozen_stages: int = -1
    no_shift: bool = False
    depth: int | None = None
    dropout: float | None = None
    out: str = 'tsmnet_finetune'
    seed: int = 0
    device: str = 'cpu'

    def __post_init__(self) -> None:
        for name in ('epochs', 'batch'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CommandError(f'--{name} must be an integer >= 1, got {value!r}')
        if not 0 <= self.val_split < 1:
            raise CommandError(f'--val-split must be in [0, 1), got {self.val_split}')
        if self.lr <= 0:
            raise CommandError(f'--lr must be > 0, got {self.lr}')
        if self.size is not None and self.size < 16:
            raise CommandError(f'--size must be >= 16, got {self.size}')


@dataclass
class VideoFolder:
    """The videos of a DATA_DIR: paths, labels and class names (sorted sub-folder names)."""

    classes: list[str]
    paths: list[Path]
    labels: list[int]

    @classmethod
    def scan(cls, root: str | Path) -> VideoFolder:
        root = Path(root)
        if not root.is_dir():
            raise CommandError(f'DATA_DIR is not a folder: {root}')
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.'))
        classes, paths, labels = [], [], []
        for folder in folders:
            videos = sorted(p for p in folder.rglob('*')
                            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not videos:
                raise CommandError(f'class folder {folder} holds no videos '
                                   f'({", ".join(sorted(VIDEO_SUFFIXES))})')
            classes.append(folder.name)
            paths += videos
            labels += [len(classes) - 1] * len(videos)
        if len(classes) < 2:
            raise CommandError(f'DATA_DIR {root} must hold at least 2 class sub-folders of '
                               f'videos, found {len(classes)}')
        return cls(classes, paths, labels)

    def split(self, fraction: float, seed: int) -> tuple[list[int], list[int]]:
        """Stratified train / validation indices: ``round(fraction * n)`` of each class (at
        least one where the class has two videos or more) held out."""
        rng = np.random.default_rng(seed)
        train, val = [], []
        labels = np.asarray(self.labels)
        for k in range(len(self.classes)):
            members = rng.permutation(np.flatnonzero(labels == k)).tolist()
            held = round(fraction * len(members))
            if fraction > 0 and len(members) > 1:
                held = min(max(held, 1), len(members) - 1)
            val += members[:held]
            train += members[held:]
        return sorted(train), sorted(val)


class ClipSet:
    """Decoded videos resized once (short side ``resize``), sampled per epoch.

    Args:
        paths: video files.
        labels: their class indices.
        num_segments: frames per clip.
        resize: the short side frames are resized to when read.
    """

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], num_segments: int,
                 resize: int) -> None:
        self.frames: list[np.ndarray] = []
        for path in paths:
            try:
                frames = T.as_rgb(read_frames(path))
            except VideoError as err:
                raise CommandError(str(err)) from None
            self.frames.append(T.resize_short_side(frames, resize))
        self.labels = torch.as_tensor(list(labels), dtype=torch.int64)
        self.num_segments = num_segments

    def __len__(self) -> int:
        return len(self.frames)

    def train_clip(self, i: int, size: int, rng: np.random.RandomState, flip: bool) -> np.ndarray:
        """A random training clip of video ``i``: ``[T, size, size, 3]`` uint8."""
        frames = self.frames[i]
        clip = frames[train_sample_frames(len(frames), self.num_segments, rng)]
        h, w = clip.shape[1:3]
        top, left = rng.randint(h - size + 1), rng.randint(w - size + 1)
        clip = clip[:, top:top + size, left:left + size]
        return clip[:, :, ::-1] if flip and rng.rand() < 0.5 else clip

    def val_clip(self, i: int, size: int) -> np.ndarray:
        """The validation clip of video ``i`` (middle frames, center crop): ``[T, s, s, 3]``."""
        frames = self.frames[i]
        return T.center_crop(frames[sample_frames(len(frames), self.num_segments)], size)[0]


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_acc: float | None
    seconds: float


@dataclass
class FinetuneResult:
    """What :func:`finetune` wrote and measured."""

    classes: list[str]
    history: list[EpochRecord] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    train_videos: int = 0
    val_videos: int = 0


def apply_partial_bn(model: Recognizer) -> None:
    """TSM's partial BN: every batch norm but the first in eval mode with frozen weights.

    Call after ``model.train()`` (which puts batch norms back in training mode).
    """
    norms = [m for m in model.backbone.modules() if isinstance(m, BatchNormBase)]
    for norm in norms[1:]:
        norm.eval()
        for p in norm.parameters():
            p.requires_grad_(False)


def architecture_of(cfg: FinetuneConfig) -> dict[str, Any]:
    """The changes to the entry's architecture (saved in the checkpoint's meta)."""
    return {**({'depth': cfg.depth} if cfg.depth is not None else {}),
            **({'is_shift': False} if cfg.no_shift else {})}


def build_model(cfg: FinetuneConfig, num_classes: int) -> Recognizer:
    """The zoo model with its initial weights (the backbone's) and a new head of
    ``num_classes`` classes."""
    kwargs: dict[str, Any] = {}
    if cfg.dropout is not None:
        kwargs['dropout_ratio'] = cfg.dropout
    torch.manual_seed(cfg.seed)
    try:
        if cfg.weights == 'none':
            model = build_architecture(cfg.model, num_classes, **architecture_of(cfg), **kwargs)
        else:
            if architecture_of(cfg):
                raise CommandError('--depth and --no-shift change the architecture: use them '
                                   'with --weights none')
            model = create_model(cfg.model, pretrained=cfg.weights or True,
                                 num_classes=num_classes, **kwargs)
    except (KeyError, TypeError, ValueError) as err:
        raise CommandError(f'--model {cfg.model}: {err}') from None
    if model.num_classes != num_classes:
        model.reset_head(num_classes)
    backbone = model.backbone
    if cfg.frozen_stages >= 0:
        if not hasattr(backbone, 'frozen_stages'):
            raise CommandError(f'--frozen-stages: {type(backbone).__name__} has no stages to '
                               'freeze')
        backbone.frozen_stages = cfg.frozen_stages
    return model.to(cfg.device)


def _batches(order: np.ndarray, batch: int) -> list[np.ndarray]:
    return [order[i:i + batch] for i in range(0, len(order), batch)]


def _to_input(clips: list[np.ndarray], mean: Sequence[float], std: Sequence[float],
              device: torch.device) -> torch.Tensor:
    return T.normalize(np.stack(clips), mean, std).to(device)  # [N, T, 3, s, s]


@torch.no_grad()
def evaluate(model: Recognizer, data: ClipSet, indices: Sequence[int], size: int,
             protocol: TestProtocol, device: torch.device, batch: int) -> float:
    """Top-1 accuracy on the validation clips (one clip, center crop each)."""
    model.eval()
    correct = 0
    for chunk in _batches(np.asarray(indices), batch):
        clips = _to_input([data.val_clip(i, size) for i in chunk], protocol.mean, protocol.std,
                          device)
        correct += int((model(clips).argmax(1).cpu() == data.labels[chunk]).sum())
    return correct / max(len(indices), 1)


def finetune(cfg: FinetuneConfig,
             on_epoch: Callable[[EpochRecord], None] | None = None,
             progress: Callable[[int, int], None] | None = None) -> FinetuneResult:
    """Fine-tune ``cfg.model`` on ``cfg.data_dir``; write checkpoint, labels, history, plot.

    Args:
        cfg: The settings.
        on_epoch: Called with each epoch's record.
        progress: Called with (steps done, total steps) after every step.

    Returns:
        The classes, the per-epoch history and the files written.
    """
    folder = VideoFolder.scan(cfg.data_dir)
    entry = weights(cfg.model)
    protocol: TestProtocol = entry.protocol
    size = cfg.size or protocol.crop_size
    resize = max(size, round(size * 8 / 7))  # 224 -> 256, MMAction2's ratio
    train_idx, val_idx = folder.split(cfg.val_split, cfg.seed)
    model = build_model(cfg, len(folder.classes))
    data = ClipSet(folder.paths, folder.labels, model.num_segments, resize)
    device = torch.device(cfg.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch)
    total = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total,
                                                    pct_start=0.15)
    rng = np.random.RandomState(cfg.seed)
    result = FinetuneResult(folder.classes, train_videos=len(train_idx),
                            val_videos=len(val_idx))
    step = 0
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    with flush_denormals(device):  # converged gradients turn denormal: slow on CPUs
        for epoch in range(1, cfg.epochs + 1):
            tic = time.perf_counter()
            model.train()
            if cfg.partial_bn:
                apply_partial_bn(model)
            losses, correct = [], 0
            for chunk in _batches(rng.permutation(train_idx), cfg.batch):
                clips = _to_input([data.train_clip(i, size, rng, cfg.flip) for i in chunk],
                                  protocol.mean, protocol.std, device)
                labels = data.labels[chunk].to(device)
                scores = model(clips)
                loss = model.cls_head.loss(scores, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(loss.item() * len(chunk))
                correct += int((scores.argmax(1) == labels).sum())
                step += 1
                if progress is not None:
                    progress(step, total)
            val_acc = evaluate(model, data, val_idx, size, protocol, device, cfg.batch) \
                if val_idx else None
            record = EpochRecord(epoch, sum(losses) / len(train_idx), correct / len(train_idx),
                                 val_acc, time.perf_counter() - tic)
            result.history.append(record)
            score = val_acc if val_acc is not None else record.train_acc
            if best is None or score >= best[0]:
                best = (score, {k: v.detach().cpu().clone() for k, v in
                                model.state_dict().items()})
            if on_epoch is not None:
                on_epoch(record)
    result.files = write_outputs(cfg, result, best[1] if best else model.state_dict(), model,
                                 {'resize_short': resize, 'crop_size': size,
                                  'crop': 'center', 'twice_sample': False, 'dense': False})
    return result


def write_outputs(cfg: FinetuneConfig, result: FinetuneResult,
                  state_dict: dict[str, torch.Tensor], model: Recognizer,
                  protocol: dict[str, Any]) -> dict[str, str]:
    """Write ``checkpoint.pth`` (best epoch), ``labels.txt``, ``history.json``, the plot."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    best = max(result.history, key=lambda r: (r.val_acc if r.val_acc is not None
                                              else r.train_acc, r.epoch))
    meta = {'classes': list(result.classes), 'tsmnet_version': __version__,
            'model': cfg.model, 'num_segments': model.num_segments, 'epoch': best.epoch,
            'val_accuracy': best.val_acc, 'config': asdict(cfg),
            # what tsmnet predict --weights needs to rebuild the model and read videos alike
            'tsmnet': {'architecture': architecture_of(cfg), 'protocol': protocol}}
    files = {'checkpoint': str(out / 'checkpoint.pth'), 'labels': str(out / 'labels.txt'),
             'history': str(out / 'history.json'), 'plot': str(out / 'finetune.png')}
    with atomic_write(out / 'checkpoint.pth') as f:
        torch.save({'state_dict': state_dict, 'meta': meta}, f)
    write_text(out / 'labels.txt', '\n'.join(result.classes) + '\n')
    write_text(out / 'history.json', json.dumps(
        {'meta': meta, 'train_videos': result.train_videos, 'val_videos': result.val_videos,
         'history': [asdict(r) for r in result.history]}, indent=1))
    save_plot(result.history, out / 'finetune.png')
    return files


def save_plot(history: Sequence[EpochRecord], path: Path) -> None:
    """Loss and accuracy per epoch as a PNG (matplotlib, the ``demo`` extra)."""
    try:
        import matplotlib
    except ImportError:
        LOGGER.warning("no plot: matplotlib is not installed (pip install 'tsmnet[demo]')")
        return
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    ax_loss.plot(epochs, [r.train_loss for r in history], 'o-')
    ax_loss.set(title='training loss', xlabel='epoch', ylim=(0, None))
    ax_acc.plot(epochs, [r.train_acc for r in history], 'o-', label='train')
    if any(r.val_acc is not None for r in history):
        ax_acc.plot(epochs, [r.val_acc for r in history], 'o-', label='validation')
    ax_acc.set(title='accuracy', xlabel='epoch', ylim=(0, 1.02))
    ax_acc.legend(loc='lower right')
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format='png')
    plt.close(fig)


def format_row(r: EpochRecord) -> str:
    val = '-' if r.val_acc is None else f'{r.val_acc:.3f}'
    return f'{r.epoch:>5}  {r.train_loss:>10.4f}  {r.train_acc:>9.3f}  {val:>7}  {r.seconds:>6.1f}'


HEADER = f'{"epoch":>5}  {"train loss":>10}  {"train acc":>9}  {"val acc":>7}  {"time s":>6}'


def run(args: argparse.Namespace) -> int:
    cfg = FinetuneConfig(
        args.data_dir, args.model, args.weights, args.epochs, args.batch, args.lr,
        args.weight_decay, args.val_split, args.size, args.flip, args.partial_bn,
        args.frozen_stages, args.no_shift, args.depth, args.dropout, args.out, args.seed,
        args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f'--threads must be >= 1, got {args.threads}')
        torch.set_num_threads(args.threads)
    if args.quiet:
        result = finetune(cfg)
    else:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        console = Console()
        console.print(HEADER, highlight=False)
        with Progress('[progress.description]{task.description}', BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            task = bar.add_task('training', total=None)
            result = finetune(
                cfg, on_epoch=lambda r: console.print(format_row(r), highlight=False),
                progress=lambda done, total: bar.update(task, completed=done, total=total))
    final = result.history[-1]
    print(f'{len(result.classes)} classes, {result.train_videos} training and '
          f'{result.val_videos} validation videos; final val acc '
          f'{"-" if final.val_acc is None else f"{final.val_acc:.3f}"}; wrote '
          f'{result.files["checkpoint"]}, {result.files["labels"]}, {result.files["plot"]}')
    return 0
