"""Fine-tuning a zoo model on a collection of videos: ``finetune(FinetuneConfig(...))``.

The data is a :class:`~tsmnet.data.VideoDataset` read by DataLoader workers (only the sampled
frames of each video are decoded, so memory does not grow with the number or length of the
videos); training uses MMAction2's TSM augmentation, AdamW and a one-cycle schedule; every
epoch ends with a validation pass, ``last.pth`` (everything ``resume`` needs) and, when the
validation accuracy is the best so far, ``best.pth``. The end writes ``checkpoint.pth`` (the
best epoch, MMAction2's ``{'state_dict', 'meta'}`` layout that ``tsmnet predict --weights``,
export and stream read), ``labels.txt``, ``history.json`` and ``finetune.png``.

Under ``torchrun`` every process trains on its share (``DistributedSampler``) and DDP averages
the gradients; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from .._version import __version__
from ..data import ClipNormalizer, EvalPipeline, TrainPipeline, VideoDataset, VideoList, from_folder
from ..fileio import save_torch, write_text
from ..models.recognizer import Recognizer
from ..weights.saved import saved_meta
from ..weights.zoo import weights
from . import batchnorm
from .distributed import Processes, process_group
from .model import build_model
from .plot import save_plot

LOGGER = logging.getLogger(__name__)
DEFAULT_MODEL = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'


class ConfigError(ValueError):
    """A bad :class:`FinetuneConfig` field: ``field`` names it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f'{name} {message}')
        self.field = name
        self.message = message


def default_workers() -> int:
    """DataLoader workers per process: ``min(4, cores per local process)``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else \
        (os.cpu_count() or 1)
    local = int(os.environ.get('LOCAL_WORLD_SIZE', '1'))
    return max(1, min(4, cores // max(local, 1)))


@dataclass
class FinetuneConfig:
    """Settings of :func:`finetune` (``tsmnet finetune``'s options).

    Args:
        data_dir: one sub-folder of videos per class (or give ``train_videos``).
        model: the zoo entry to start from.
        weights: ``'none'`` (from scratch), None (the entry's published weights), or a
            checkpoint file or URL.
        epochs: passes over the training videos.
        batch: clips per step and process (the global batch is ``batch * processes``).
        lr: the peak learning rate of the one-cycle schedule.
        weight_decay: the optimiser's.
        optimizer: ``'adamw'``, or ``'sgd'`` (momentum 0.9, MMAction2's TSM configs' choice,
            with their lr 0.01 per 8 clips).
        val_split: the stratified share of each class held out for validation.
        size: the crop side (None: the entry's, e.g. 224); the short side is resized to
            ``size * 8 / 7`` first (256 for 224).
        flip: random horizontal flips (``Flip(flip_ratio=0.5)``); off where left and right
            matter (Something-Something).
        partial_bn: TSM's partial BN (all batch norms but the first frozen).
        frozen_bn: every batch norm frozen (running statistics, fixed weights): a clip's
            gradient does not depend on the rest of its batch.
        frozen_stages: freeze the stem and this many stages (-1: none).
        no_shift: the same network without temporal shift (TSN).
        shift_mode: ``'causal'`` trains an online model (one fold from the past only).
        depth: a ResNet depth instead of the entry's (from scratch only).
        dropout: the head's dropout (None: the entry's).
        out: the output folder.
        seed: the seed of the weights, the split, the shuffling and the augmentations.
        device: ``'cpu'`` or ``'cuda'`` (with torchrun: one GPU per local rank).
        workers: DataLoader worker processes per process (None: :func:`default_workers`;
            0 reads in the training process).
        amp: mixed precision: bf16 autocast on the CPU, bf16 (or fp16 with loss scaling where
            bf16 is unsupported) on CUDA.
        resume: continue from this ``last.pth`` (``'auto'``: ``out/last.pth``).
        on_error: a video that cannot be read: ``'raise'`` or ``'skip'`` (counted, warned).
    """

    data_dir: str | None = None
    model: str = DEFAULT_MODEL
    weights: str | None = None
    epochs: int = 10
    batch: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: Literal['adamw', 'sgd'] = 'adamw'
    val_split: float = 0.2
    size: int | None = None
    flip: bool = False
    partial_bn: bool = False
    frozen_bn: bool = False
    frozen_stages: int = -1
    no_shift: bool = False
    shift_mode: Literal['bidirectional', 'causal'] = 'bidirectional'
    depth: int | None = None
    dropout: float | None = None
    out: str = 'tsmnet_finetune'
    seed: int = 0
    device: str = 'cpu'
    workers: int | None = None
    amp: bool = False
    resume: str | None = None
    on_error: Literal['raise', 'skip'] = 'raise'

    def __post_init__(self) -> None:
        for name in ('epochs', 'batch'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f'must be an integer >= 1, got {value!r}')
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 0):
            raise ConfigError('workers', f'must be an integer >= 0, got {self.workers!r}')
        if not 0 <= self.val_split < 1:
            raise ConfigError('val_split', f'must be in [0, 1), got {self.val_split}')
        if self.lr <= 0:
            raise ConfigError('lr', f'must be > 0, got {self.lr}')
        if self.size is not None and self.size < 16:
            raise ConfigError('size', f'must be >= 16, got {self.size}')
        if self.shift_mode not in ('bidirectional', 'causal'):
            raise ConfigError('shift_mode', f"must be 'bidirectional' or 'causal', got "
                              f'{self.shift_mode!r}')
        if self.optimizer not in ('adamw', 'sgd'):
            raise ConfigError('optimizer', f"must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.partial_bn and self.frozen_bn:
            raise ConfigError('partial_bn', 'and frozen_bn exclude each other')

    def architecture(self) -> dict[str, Any]:
        """The changes to the entry's architecture (saved in the checkpoint's meta)."""
        return {**({'depth': self.depth} if self.depth is not None else {}),
                **({'is_shift': False} if self.no_shift else {}),
                **({'shift_mode': 'causal'} if self.shift_mode == 'causal' else {})}


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_acc: float | None
    seconds: float


@dataclass
class FinetuneResult:
    """What :func:`finetune` wrote and measured (on every process; files on rank 0)."""

    classes: list[str]
    history: list[EpochRecord] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    train_videos: int = 0
    val_videos: int = 0
    skipped: list[str] = field(default_factory=list)


def _autocast(device: torch.device, enabled: bool) -> tuple[Any, torch.amp.GradScaler | None]:
    """The autocast context and the loss scaler (fp16 only) of ``--amp``."""
    if not enabled:
        return contextlib.nullcontext(), None
    if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        return torch.autocast('cuda', torch.float16), torch.amp.GradScaler('cuda')
    return torch.autocast(device.type, torch.bfloat16), None


def _loader(dataset: VideoDataset, batch: int, workers: int, sampler: Any) -> DataLoader:
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=False,
                      prefetch_factor=2 if workers > 0 else None)


class _Shard(torch.utils.data.Sampler):
    """Indices ``rank, rank + world, ...``: each process's part of the validation set, no
    padding (so the summed counts are exact)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@torch.no_grad()
def evaluate(model: Recognizer, loader: DataLoader, procs: Processes,
             normalize: ClipNormalizer) -> float:
    """Top-1 accuracy over all processes' shards of the validation set."""
    model.eval()
    correct = total = 0
    for clips, labels in loader:
        clips = normalize(clips.to(procs.device))
        correct += int((model(clips).argmax(1).cpu() == labels).sum())
        total += len(labels)
    correct, total = procs.all_sum(correct, total)
    return correct / max(total, 1)


def _meta(cfg: FinetuneConfig, classes: list[str], model: Recognizer, epoch: int,
          val_acc: float | None, protocol: dict[str, Any]) -> dict[str, Any]:
    # meta['tsmnet'] is what tsmnet.save writes: tsmnet.load, predict, export and stream
    # rebuild the model from it and read videos alike (tsmnet.weights.saved)
    test_protocol = replace(weights(cfg.model).protocol, **protocol)
    return {'classes': list(classes), 'tsmnet_version': __version__, 'model': cfg.model,
            'num_segments': model.num_segments, 'epoch': epoch, 'val_accuracy': val_acc,
            'config': asdict(cfg),
            'tsmnet': saved_meta(model.architecture(), list(classes), test_protocol, cfg.model)}


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # contiguous: the checkpoint holds plain tensors whatever layout training used
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def finetune(cfg: FinetuneConfig, train_videos: VideoList | None = None,
             val_videos: VideoList | None = None,
             on_epoch: Callable[[EpochRecord], None] | None = None,
             progress: Callable[[int, int], None] | None = None) -> FinetuneResult:
    """Fine-tune ``cfg.model`` on videos; write the checkpoints, labels, history and plot.

    Args:
        cfg: the settings.
        train_videos: the training videos (default: ``cfg.data_dir`` less its validation
            split).
        val_videos: the validation videos (default: ``cfg.data_dir``'s stratified
            ``cfg.val_split``; none when ``train_videos`` is given without them).
        on_epoch: called on rank 0 with each epoch's record.
        progress: called on rank 0 with (steps done, total steps) after every step.

    Returns:
        The classes, the per-epoch history and the files written.
    """
    if train_videos is None:
        if cfg.data_dir is None:
            raise ConfigError('data_dir', 'or train_videos must be given')
        train_videos, val_videos = from_folder(cfg.data_dir).split(cfg.val_split, cfg.seed)
    classes = list(train_videos.classes)
    entry = weights(cfg.model)
    protocol = entry.protocol
    size = cfg.size or protocol.crop_size
    resize = max(size, round(size * 8 / 7))  # 224 -> 256, MMAction2's ratio
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, len(classes), cfg.weights, cfg.architecture(),
                        cfg.frozen_stages,
                        **({'dropout_ratio': cfg.dropout} if cfg.dropout is not None else {}))
    eval_protocol = {'resize_short': resize, 'crop_size': size, 'crop': 'center',
                     'twice_sample': False, 'dense': False}
    train_set = VideoDataset(train_videos, TrainPipeline(
        model.num_segments, resize, size, flip_ratio=0.5 if cfg.flip else 0.0,
        mean=protocol.mean, std=protocol.std, normalize=False), seed=cfg.seed,
        on_error=cfg.on_error)
    val_set = None if not val_videos else VideoDataset(val_videos, EvalPipeline.validation(
        replace(protocol, **eval_protocol), model.num_segments, normalize=False),
        on_error=cfg.on_error)
    workers = default_workers() if cfg.workers is None else cfg.workers
    with process_group(cfg.device) as procs:
        result = _train(cfg, procs, model, train_set, val_set, workers, eval_protocol,
                        on_epoch, progress)
    result.classes = classes
    return result


def _train(cfg: FinetuneConfig, procs: Processes, model: Recognizer, train_set: VideoDataset,
           val_set: VideoDataset | None, workers: int, eval_protocol: dict[str, Any],
           on_epoch: Callable[[EpochRecord], None] | None,
           progress: Callable[[int, int], None] | None) -> FinetuneResult:
    out = Path(cfg.out)
    model = model.to(procs.device)
    # channels-last on the CPU: a MobileNetV2-TSM train step at 112 took 0.67x the time of
    # the contiguous one (docs/performance.md#training-data-and-tsmnet-finetune)
    channels_last = procs.device.type == 'cpu'
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    # the workers hand over uint8 clips; normalised here a batch at a time (on the device)
    normalize = ClipNormalizer(train_set.pipeline.mean, train_set.pipeline.std, channels_last)
    sampler = DistributedSampler(train_set, num_replicas=procs.world_size, rank=procs.rank,
                                 shuffle=True, seed=cfg.seed)
    train_loader = _loader(train_set, cfg.batch, workers, sampler)
    val_loader = None if val_set is None else _loader(
        val_set, cfg.batch, workers, _Shard(len(val_set), procs.rank, procs.world_size))
    _set_train_mode(model, cfg)  # frozen weights before the optimizer and DDP see them
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay) \
        if cfg.optimizer == 'adamw' else \
        torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    total = len(train_loader) * cfg.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                    total_steps=total, pct_start=0.15)
    autocast, scaler = _autocast(procs.device, cfg.amp)
    result = FinetuneResult(list(train_set.classes), train_videos=len(train_set),
                            val_videos=0 if val_set is None else len(val_set))
    start, best = 1, -1.0
    if cfg.resume:
        path = out / 'last.pth' if cfg.resume == 'auto' else Path(cfg.resume)
        state = torch.load(path, map_location='cpu', weights_only=True)
        model.load_state_dict(state['state_dict'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        if scaler is not None and state.get('scaler'):
            scaler.load_state_dict(state['scaler'])
        result.history = [EpochRecord(**r) for r in state['history']]
        torch.set_rng_state(state['torch_rng'])  # dropout continues as without the stop
        start, best = state['meta']['epoch'] + 1, state['best_score']
        LOGGER.info('resuming from %s after epoch %d', path, start - 1)
    net = DistributedDataParallel(model) if procs.distributed else model
    step = (start - 1) * len(train_loader)
    from_scratch = cfg.weights == 'none' and start == 1
    with _flush_denormals(procs.device):
        for epoch in range(start, cfg.epochs + 1):
            tic = time.perf_counter()
            sampler.set_epoch(epoch)
            train_set.set_epoch(epoch)
            _set_train_mode(model, cfg)
            loss_sum = correct = seen = 0.0
            for clips, labels in train_loader:
                clips = normalize(clips.to(procs.device))
                labels = labels.to(procs.device)
                first = contextlib.nullcontext()
                if from_scratch:  # see tsmnet.train.batchnorm
                    first, from_scratch = batchnorm.statistics_from_this_batch(model), False
                with first, autocast:
                    scores = net(clips)
                    loss = model.cls_head.loss(scores.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                scheduler.step()
                loss_sum += loss.item() * len(labels)
                correct += int((scores.argmax(1) == labels).sum())
                seen += len(labels)
                step += 1
                if progress is not None and procs.main:
                    progress(step, total)
            loss_sum, correct, seen = procs.all_sum(loss_sum, correct, seen)
            val_acc = None if val_loader is None else evaluate(model, val_loader, procs, normalize)
            record = EpochRecord(epoch, loss_sum / seen, correct / seen, val_acc,
                                 time.perf_counter() - tic)
            result.history.append(record)
            score = val_acc if val_acc is not None else record.train_acc
            improved = score >= best
            best = max(best, score)
            if procs.main:
                meta = _meta(cfg, result.classes, model, epoch, val_acc, eval_protocol)
                state = _cpu_state(model)
                if improved:
                    save_torch({'state_dict': state, 'meta': meta}, out / 'best.pth')
                save_torch({'state_dict': state, 'meta': meta,
                            'optimizer': optimizer.state_dict(),
                            'scheduler': scheduler.state_dict(),
                            'scaler': scaler.state_dict() if scaler is not None else None,
                            'history': [asdict(r) for r in result.history],
                            'best_score': best, 'torch_rng': torch.get_rng_state()},
                           out / 'last.pth')
                if on_epoch is not None:
                    on_epoch(record)
            procs.barrier()
    skipped = {str(p) for p in train_set.skipped} | \
        ({str(p) for p in val_set.skipped} if val_set is not None else set())
    result.skipped = sorted(skipped)
    if skipped:
        LOGGER.warning('%d videos could not be read and were skipped: %s', len(skipped),
                       ', '.join(sorted(skipped)[:10]))
    if procs.main:
        result.files = _write_outputs(out, result)
    return result


def _set_train_mode(model: Recognizer, cfg: FinetuneConfig) -> None:
    model.train()
    if cfg.partial_bn:
        batchnorm.apply_partial_bn(model)
    if cfg.frozen_bn:
        batchnorm.freeze_batch_norms(model)


def _write_outputs(out: Path, result: FinetuneResult) -> dict[str, str]:
    """``checkpoint.pth`` (a copy of ``best.pth``), ``labels.txt``, ``history.json``, plot."""
    files = {'checkpoint': str(out / 'checkpoint.pth'), 'best': str(out / 'best.pth'),
             'last': str(out / 'last.pth'), 'labels': str(out / 'labels.txt'),
             'history': str(out / 'history.json'), 'plot': str(out / 'finetune.png')}
    shutil.copyfile(out / 'best.pth', out / '.checkpoint.pth.tmp')
    os.replace(out / '.checkpoint.pth.tmp', out / 'checkpoint.pth')
    meta = torch.load(out / 'best.pth', map_location='cpu', weights_only=True)['meta']
    write_text(out / 'labels.txt', '\n'.join(result.classes) + '\n')
    write_text(out / 'history.json', json.dumps(
        {'meta': meta, 'train_videos': result.train_videos, 'val_videos': result.val_videos,
         'skipped': result.skipped, 'history': [asdict(r) for r in result.history]}, indent=1))
    save_plot(result.history, out / 'finetune.png')
    return files


@contextlib.contextmanager
def _flush_denormals(device: torch.device) -> Iterator[None]:
    """Flush denormal floats to zero while training on the CPU: converged gradients and
    optimiser moments turn denormal, which x86 CPUs compute on many times slower."""
    if device.type != 'cpu':
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
