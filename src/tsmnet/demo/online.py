"""``tsmnet demo --online``: train a causal TSM on :mod:`.data`'s task, then stream it.

The model is a TSN-style recogniser (:class:`.train.ClipClassifier`) on a backbone built with
``shift_mode='causal'``: every frame reads the past only. After training, the validation clips
are streamed frame by frame through :class:`tsmnet.TSMStream` (all clips at once, one stream
each), and the clip score after ``t`` frames is the mean of the frame scores so far (TSM's
segment consensus, online). The clips wrap around the frame (``MotionDirection(wrap=True)``),
so the first frame alone cannot tell the direction of motion and accuracy grows with the
frames seen; after all ``T`` frames the streamed score equals the offline
score of the whole clip, so the curve ends at the offline accuracy.
"""

from __future__ import annotations

import io
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..models.mobilenet_v2_tsm import MobileNetV2TSM
from ..models.resnet_tsm import ResNetTSM
from ..stream import TSMStream
from .config import DemoConfig
from .data import MotionDirection
from .train import ClipClassifier, evaluate, quiet_logger

OnlineArch = Literal['resnet', 'mobilenetv2']
ONLINE_ARCHS: tuple[str, ...] = ('resnet', 'mobilenetv2')


def build_causal_model(cfg: DemoConfig, num_classes: int,
                       arch: OnlineArch = 'resnet') -> ClipClassifier:
    """A causal ResNet-``cfg.depth``-TSM or MobileNetV2-TSM recogniser, from ``cfg.seed``."""
    if arch not in ONLINE_ARCHS:
        raise ValueError(f'arch must be one of {ONLINE_ARCHS}, got {arch!r}')
    torch.manual_seed(cfg.seed)
    backbone: nn.Module
    if arch == 'mobilenetv2':
        backbone = MobileNetV2TSM(num_segments=cfg.num_segments, shift_mode='causal')
    else:
        backbone = ResNetTSM(cfg.depth, num_segments=cfg.num_segments, shift_mode='causal',
                             pretrained=None)
    with quiet_logger():
        backbone.init_weights()
    return ClipClassifier(backbone, num_classes).to(cfg.device)


@torch.no_grad()
def streamed_accuracy(model: ClipClassifier, clips: torch.Tensor,
                      labels: torch.Tensor) -> tuple[list[float], torch.Tensor]:
    """Accuracy after each frame seen, streaming every clip frame by frame.

    Args:
        model: A recogniser on a causal backbone.
        clips: ``[N, T, 3, H, W]`` in ``[0, 1]`` (``N`` streams, one per clip).
        labels: ``[N]``.

    Returns:
        Accuracy after frames ``1 .. T`` (the score of ``t`` frames is the mean of their frame
        scores), and the final clip scores ``[N, K]``.
    """
    if clips.dim() != 5 or clips.shape[1] < 1:
        raise ValueError(f'clips must be [N, T, 3, H, W] with T >= 1, got {tuple(clips.shape)}')
    model.eval()
    stream = TSMStream(model.backbone)
    total = torch.zeros(())
    accuracy = []
    for t in range(clips.shape[1]):
        features = stream.step((clips[:, t] - model.mean) / model.std)
        total = total + model.fc(features.mean(dim=(2, 3)))
        accuracy.append((total.argmax(dim=1) == labels).float().mean().item())
    return accuracy, total / clips.shape[1]


def run_online_demo(cfg: DemoConfig, arch: OnlineArch = 'resnet',
                    on_step: Callable[[int, dict[str, float]], None] | None = None
                    ) -> dict[str, Any]:
    """Train the causal model, stream the validation clips, write ``online.json`` and
    ``online.png`` to ``cfg.out``.

    Args:
        cfg: The settings (those of ``tsmnet demo``).
        arch: ``'resnet'`` (ResNet-``cfg.depth``) or ``'mobilenetv2'``. Defaults to
            ``'resnet'``.
        on_step: Called after every step with the step number (from 1) and the smoothed
            training ``loss`` and ``acc``.

    Returns:
        The content of ``online.json``.
    """
    start = time.perf_counter()
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # wrap: no single frame tells the direction, so what the stream has seen so far matters
    train_data = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed, wrap=True)
    val_data = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed + 1_000_003,
                               wrap=True)
    val_clips, val_labels = val_data.sample_pairs(cfg.val_pairs)
    val_clips, val_labels = val_clips.to(device), val_labels.to(device)
    model = build_causal_model(cfg, train_data.num_classes, arch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                    total_steps=cfg.steps, pct_start=0.15)
    losses: list[float] = []
    smooth: dict[str, float] = {}
    train_start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        clips, labels = train_data.sample(cfg.batch_size)
        clips, labels = clips.to(device), labels.to(device)
        model.train()
        scores = model(clips)
        loss = nn.functional.cross_entropy(scores, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        acc = (scores.argmax(dim=1) == labels).float().mean().item()
        for key, value in (('loss', losses[-1]), ('acc', acc)):
            smooth[key] = 0.9 * smooth.get(key, value) + 0.1 * value
        if on_step is not None:
            on_step(step, smooth)
    train_time = time.perf_counter() - train_start

    offline_acc, offline_preds = evaluate(model, val_clips, val_labels)
    stream_start = time.perf_counter()
    by_frames, streamed_scores = streamed_accuracy(model, val_clips, val_labels)
    stream_time = time.perf_counter() - stream_start
    agree = (streamed_scores.argmax(dim=1) == offline_preds).float().mean().item()
    name = ('MobileNetV2-TSM' if arch == 'mobilenetv2' else f'ResNet-{cfg.depth}-TSM')
    results: dict[str, Any] = {
        'task': {'name': 'motion direction', 'classes': list(train_data.classes),
                 'chance': 1 / train_data.num_classes, 'val_clips': len(val_labels)},
        'config': dict(asdict(cfg), arch=arch),
        'model': {'label': f'causal {name}', 'shift_mode': 'causal',
                  'params': sum(p.numel() for p in model.parameters()),
                  'train_time_s': train_time,
                  'final_train_loss': sum(losses[-10:]) / len(losses[-10:])},
        'offline_accuracy': offline_acc,
        'streamed_accuracy_by_frames_seen': by_frames,
        'streamed_agrees_with_offline': agree,
        'stream_time_s': stream_time,
        'history': {'loss': losses},
        'environment': {'torch': torch.__version__, 'device': str(device),
                        'threads': torch.get_num_threads(),
                        'python': platform.python_version()},
    }
    plot_path = out / 'online.png'
    save_online_plot(results, plot_path)
    results['files'] = {'results': str(out / 'online.json'), 'plot': str(plot_path)}
    results['total_time_s'] = time.perf_counter() - start
    with open(out / 'online.json', 'w') as f:
        json.dump(results, f, indent=1)
    return results


def save_online_plot(results: dict[str, Any], path: Path) -> None:
    """Training loss, and streamed accuracy against frames seen with the offline accuracy."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    by_frames = results['streamed_accuracy_by_frames_seen']
    frames = list(range(1, len(by_frames) + 1))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=80)
    ax_loss.plot(range(1, len(results['history']['loss']) + 1), results['history']['loss'],
                 color='tab:blue', lw=1)
    ax_loss.set(title='training loss', xlabel='step', ylim=(0, None))
    ax_acc.plot(frames, by_frames, 'o-', color='tab:blue',
                label=f"streamed, {results['model']['label']}")
    ax_acc.axhline(results['offline_accuracy'], color='tab:green', ls='-', lw=1,
                   label=f"offline, whole clip: {results['offline_accuracy']:.2f}")
    ax_acc.axhline(results['task']['chance'], color='grey', ls='--', lw=1, label='chance')
    ax_acc.set(title='validation accuracy vs frames seen', xlabel='frames seen',
               ylim=(0, 1.02), xticks=frames)
    ax_acc.legend(fontsize=8, loc='lower right')
    fig.suptitle('Online TSM: one frame at a time, the past cached in shift buffers',
                 fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=80, bbox_inches='tight')
    plt.close(fig)
    from PIL import Image  # a dependency of matplotlib

    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert('RGB').quantize(colors=64).save(path, optimize=True)


def format_online_table(results: dict[str, Any]) -> str:
    """The end-of-run table: streamed accuracy after each number of frames, and offline."""
    rows = [('frames seen', 'streamed acc')]
    rows += [(str(t), f'{acc:.3f}')
             for t, acc in enumerate(results['streamed_accuracy_by_frames_seen'], 1)]
    rows.append(('offline (all)', f"{results['offline_accuracy']:.3f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f'{a.ljust(widths[0])}  {b.rjust(widths[1])}' for a, b in rows]
    lines.insert(1, f"{'-' * widths[0]}  {'-' * widths[1]}")
    lines.insert(len(lines) - 1, lines[1])
    m = results['model']
    lines.append(f"{m['label']}, {m['params'] / 1e6:.2f} M parameters, trained "
                 f"{m['train_time_s']:.0f} s; streamed {results['task']['val_clips']} clips "
                 f"in {results['stream_time_s']:.1f} s; streamed and offline predictions agree "
                 f"on {100 * results['streamed_agrees_with_offline']:.0f}% of the clips; "
                 f"chance {results['task']['chance']:.3f}")
    return '\n'.join(lines)
