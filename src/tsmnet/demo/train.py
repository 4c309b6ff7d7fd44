"""Train ResNetTSM and the same network without shifts side by side on :mod:`.data`'s task.

Both models are ``ResNetTSM(depth, num_segments)`` with the same initial weights, the same
optimiser, the same batches and the same head (per-frame global average pool, a linear layer,
the frame scores averaged over the clip as in TSN). The only difference: one has
``is_shift=True``, the other ``is_shift=False``, which makes it a per-frame network whose
clip score cannot depend on the order of the frames.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.logging import MMLogger, print_log
from torch import nn

from ..fileio import atomic_write, write_text
from ..models.resnet_tsm import ResNetTSM
from .config import DemoConfig
from .data import MotionDirection

MODEL_NAMES: tuple[str, ...] = ('tsm', 'tsn')
LABELS: dict[str, str] = {'tsm': 'TSM (is_shift=True)', 'tsn': 'TSN (is_shift=False)'}


class ClipClassifier(nn.Module):
    """A TSN-style recogniser: backbone, per-frame average pool and linear layer, clip score
    the mean of its frame scores.

    Args:
        backbone: A :class:`ResNetTSM` (its ``num_segments`` is the clip length).
        num_classes: Number of classes.
        mean: Per-channel mean subtracted from input frames in ``[0, 1]``. Defaults to 0.45.
        std: Per-channel standard deviation the frames are divided by. Defaults to 0.25.
    """

    def __init__(self, backbone: ResNetTSM, num_classes: int, mean: float = 0.45,
                 std: float = 0.25) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.feat_dim, num_classes)
        self.mean, self.std = mean, std

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Args: clips: ``[N, T, C, H, W]`` in ``[0, 1]``. Returns: class scores ``[N, K]``."""
        n, t = clips.shape[:2]
        features = self.backbone((clips.flatten(0, 1) - self.mean) / self.std)  # [N * T, C', h, w]
        scores = self.fc(features.mean(dim=(2, 3)))                               # [N * T, K]
        return scores.view(n, t, -1).mean(dim=1)


@contextlib.contextmanager
def flush_denormals(device: torch.device | str) -> Iterator[bool]:
    """Flush denormal floats to zero while training on the CPU (no effect elsewhere).

    Once a model converges, some gradients and optimiser moments fall below float32's
    smallest normal number (about 1e-38); x86 CPUs compute on such denormals many times
    slower (TSM's converged gradients in ``tsmnet demo`` do). Flushing them to zero changes
    nothing a model learns and restores the speed. The setting is process-wide in PyTorch;
    it is switched off again on exit (PyTorch's default).

    Yields:
        Whether the CPU supports flushing (x86 with SSE3).
    """
    if torch.device(device).type != 'cpu':
        yield False
        return
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def quiet_logger(level: int = logging.WARNING) -> Iterator[None]:
    """Raise MMEngine's current logger to ``level`` (``init_weights`` logs every parameter)."""
    logger = MMLogger.get_current_instance()
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def build_model(cfg: DemoConfig, is_shift: bool, num_classes: int) -> ClipClassifier:
    """The recogniser, initialised from ``cfg.seed`` (the same weights for both models)."""
    torch.manual_seed(cfg.seed)
    backbone = ResNetTSM(cfg.depth, num_segments=cfg.num_segments, is_shift=is_shift,
                         pretrained=None)
    with quiet_logger():
        backbone.init_weights()
    model = ClipClassifier(backbone, num_classes)
    return model.to(cfg.device)


@torch.no_grad()
def evaluate(model: nn.Module, clips: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 64) -> tuple[float, torch.Tensor]:
    """Accuracy of ``model`` (eval mode) and its predictions ``[N]``."""
    model.eval()
    preds = torch.cat([model(clips[i:i + batch_size]).argmax(dim=1)
                       for i in range(0, len(clips), batch_size)])
    return (preds == labels).float().mean().item(), preds


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@dataclass
class _Run:
    """One model's training state and history."""

    model: ClipClassifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_time: float = 0.0
    loss: list[float] = field(default_factory=list)
    acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


def run_demo(cfg: DemoConfig,
             on_step: Callable[[int, dict[str, dict[str, float]]], None] | None = None
             ) -> dict[str, Any]:
    """Train both models, evaluate them, write ``results.json`` and ``demo.png`` to ``cfg.out``.

    Args:
        cfg: The settings.
        on_step: Called after every step with the step number (from 1) and, per model, its
            smoothed training ``loss`` and ``acc`` (for a progress display).

    Returns:
        The content of ``results.json``.
    """
    start = time.perf_counter()
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train_data = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed)
    val_data = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed + 1_000_003)
    val_clips, val_labels = val_data.sample_pairs(cfg.val_pairs)
    val_clips, val_labels = val_clips.to(device), val_labels.to(device)
    num_classes = train_data.num_classes

    runs: dict[str, _Run] = {}
    for name in MODEL_NAMES:
        model = build_model(cfg, is_shift=name == 'tsm', num_classes=num_classes)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
        runs[name] = _Run(model, optimizer, scheduler)
    params = sum(p.numel() for p in runs['tsm'].model.parameters())

    eval_steps = sorted({max(1, round(cfg.steps * (i + 1) / cfg.evals))
                         for i in range(cfg.evals)})
    smooth: dict[str, dict[str, float]] = {n: {} for n in MODEL_NAMES}
    with flush_denormals(device) as flushed:  # converged gradients turn denormal: slow on CPUs
        for step in range(1, cfg.steps + 1):
            clips, labels = train_data.sample(cfg.batch_size)
            clips, labels = clips.to(device), labels.to(device)
            for name, run in runs.items():
                tic = time.perf_counter()
                run.model.train()
                scores = run.model(clips)
                loss = nn.functional.cross_entropy(scores, labels)
                run.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                run.optimizer.step()
                run.scheduler.step()
                _sync(device)
                run.train_time += time.perf_counter() - tic
                run.loss.append(loss.item())
                run.acc.append((scores.argmax(dim=1) == labels).float().mean().item())
                for key, value in (('loss', run.loss[-1]), ('acc', run.acc[-1])):
                    old = smooth[name].get(key, value)
                    smooth[name][key] = 0.9 * old + 0.1 * value
            if step in eval_steps:
                for run in runs.values():
                    run.val_acc.append(evaluate(run.model, val_clips, val_labels)[0])
                smooth_val = {n: r.val_acc[-1] for n, r in runs.items()}
                for name in MODEL_NAMES:
                    smooth[name]['val_acc'] = smooth_val[name]
            if on_step is not None:
                on_step(step, smooth)

    preds = {name: evaluate(run.model, val_clips, val_labels)[1] for name, run in runs.items()}
    results: dict[str, Any] = {
        'task': {
            'name': 'motion direction',
            'classes': list(train_data.classes),
            'chance': 1 / num_classes,
            'description': ('one object moves across the frame; class 1 clips are class 0 '
                            'clips played backwards, so both classes hold the same frames'),
            'val_clips': len(val_labels),
        },
        'config': asdict(cfg),
        'models': {
            name: {
                'label': LABELS[name],
                'is_shift': name == 'tsm',
                'val_accuracy': run.val_acc[-1],
                'params': params,
                'train_time_s': run.train_time,
                'final_train_loss': sum(run.loss[-10:]) / len(run.loss[-10:]),
            } for name, run in runs.items()
        },
        'history': {
            'step': list(range(1, cfg.steps + 1)),
            'eval_step': eval_steps,
            **{name: {'loss': run.loss, 'acc': run.acc, 'val_acc': run.val_acc}
               for name, run in runs.items()},
        },
        'environment': {
            'torch': torch.__version__,
            'device': str(device),
            'threads': torch.get_num_threads(),
            'flush_denormals': flushed,
            'python': platform.python_version(),
        },
    }
    plot_path = out / 'demo.png'
    save_plot(results, val_clips.cpu(), val_labels.cpu(), {n: p.cpu() for n, p in preds.items()},
              plot_path, classes=train_data.classes)
    results['files'] = {'results': str(out / 'results.json'), 'plot': str(plot_path)}
    results['total_time_s'] = time.perf_counter() - start
    write_text(out / 'results.json', json.dumps(results, indent=1))
    print_log(f'tsmnet demo: wrote {out / "results.json"} and {plot_path}', logger='current',
              level=logging.DEBUG)
    return results


def _smoothed(values: list[float], alpha: float = 0.1) -> list[float]:
    smoothed, current = [], values[0]
    for value in values:
        current = (1 - alpha) * current + alpha * value
        smoothed.append(current)
    return smoothed


def save_plot(results: dict[str, Any], clips: torch.Tensor, labels: torch.Tensor,
              preds: dict[str, torch.Tensor], path: Path, classes: tuple[str, ...]) -> None:
    """Training curves and two example clips (a validation clip and its reverse) as a PNG.

    Args:
        results: The run's results (``history``, ``models``, ``task``).
        clips: Validation clips ``[2 * P, T, 3, H, W]``: clip ``i`` and clip ``P + i`` are a
            clip and its reverse.
        labels: Their labels ``[2 * P]``.
        preds: Per model name, its predictions ``[2 * P]``.
        path: Where to write the PNG.
        classes: Class names.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    history = results['history']
    colours = {'tsm': 'tab:blue', 'tsn': 'tab:orange'}
    t = clips.shape[1]
    fig = plt.figure(figsize=(9, 5.6), dpi=80)
    grid = fig.add_gridspec(4, t, height_ratios=[2.2, 0.25, 1, 1], hspace=0.35, wspace=0.3)
    ax_loss = fig.add_subplot(grid[0, :t // 2])
    ax_acc = fig.add_subplot(grid[0, t // 2:])
    for name in MODEL_NAMES:
        label = results['models'][name]['label']
        ax_loss.plot(history['step'], _smoothed(history[name]['loss']), color=colours[name],
                     label=label)
        ax_acc.plot(history['step'], _smoothed(history[name]['acc']), color=colours[name],
                    alpha=0.45, lw=1)
        ax_acc.plot(history['eval_step'], history[name]['val_acc'], 'o-', color=colours[name],
                    label=f'{label}: val {history[name]["val_acc"][-1]:.2f}')
    ax_loss.set(title='training loss (smoothed)', xlabel='step', ylim=(0, None))
    ax_loss.legend(fontsize=8, loc='center right', bbox_to_anchor=(1, 0.45))
    ax_acc.axhline(results['task']['chance'], color='grey', ls='--', lw=1, label='chance')
    ax_acc.set(title='accuracy (line: train, dots: validation)', xlabel='step',
               ylim=(0, 1.02))
    ax_acc.legend(fontsize=8, loc='lower right')

    pairs = len(clips) // 2
    for row, index in enumerate((0, pairs)):
        truth = classes[int(labels[index])]
        verdicts = ', '.join(
            f'{name.upper()}: {classes[int(preds[name][index])]}'
            f'{"" if preds[name][index] == labels[index] else " (wrong)"}'
            for name in MODEL_NAMES)
        for i in range(t):
            ax = fig.add_subplot(grid[2 + row, i])
            ax.imshow(clips[index, i].permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(f'clip {row + 1}', fontsize=8)
            if row == 1:
                ax.set_xlabel(f't = {i}', fontsize=8)
            if i == t // 2:
                ax.set_title(f'clip {row + 1}{" (clip 1 reversed)" if row else ""}: '
                             f'{truth}.  {verdicts}', fontsize=9, loc='center')
    fig.suptitle('Same frames, opposite labels: the shift reads the order, frame averaging '
                 'cannot', fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=80, bbox_inches='tight')
    plt.close(fig)
    # A 256-colour palette keeps the file small (the noisy frames compress badly in RGB).
    from PIL import Image  # a dependency of matplotlib

    buffer.seek(0)
    with Image.open(buffer) as image:
        with atomic_write(path) as f:
            image.convert('RGB').quantize(colors=256).save(f, format='png', optimize=True)


def format_table(results: dict[str, Any]) -> str:
    """The end-of-run table: validation accuracy, parameters and training time per model."""
    rows = [('model', 'val acc', 'params', 'train time')]
    for name in MODEL_NAMES:
        m = results['models'][name]
        rows.append((m['label'], f'{m["val_accuracy"]:.3f}', f'{m["params"] / 1e6:.2f} M',
                     f'{m["train_time_s"]:.0f} s'))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    chance = results['task']['chance']
    clips = results['task']['val_clips']
    lines.append(f'chance: {chance:.3f}; {clips} validation clips ({clips // 2} clips, each '
                 f'also played backwards)')
    return '\n'.join(lines)

