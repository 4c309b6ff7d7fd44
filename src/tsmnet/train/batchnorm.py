"""Batch-norm policies of fine-tuning: TSM's partial BN, frozen BN, and statistics seeded from
the first batch when training from scratch.

From scratch, MMAction2's (and torchvision's) initialisation leaves every batch norm with
running statistics ``(mean 0, var 1)``, while the true variance after a depthwise 3x3 conv
initialised with Kaiming fan-out is about ``2 / C``: in eval mode each stage of a fresh
MobileNetV2 shrinks activations about 10x (backbone output std 2e-9). Running averages with
momentum 0.1 forget that start slowly (0.9 ** 40 = 1.5% left after 40 steps, still enough
to cancel 17 blocks of signal), so a short fine-tuning run from scratch ended with an eval
output that ignored its input. Taking the first training batch's statistics as the running
statistics (then averaging with the usual momentum) removes the start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from .._torch_compat import BatchNormBase


def batch_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BatchNormBase)]


def apply_partial_bn(model: nn.Module) -> None:
    """TSM's partial BN: every batch norm of ``model.backbone`` but the first in eval mode with
    frozen weights. Call after ``model.train()`` (which puts batch norms back in training)."""
    for norm in batch_norms(model.backbone)[1:]:
        norm.eval()
        for p in norm.parameters():
            p.requires_grad_(False)


def freeze_batch_norms(model: nn.Module) -> None:
    """Every batch norm in eval mode (running statistics) with frozen weights. Call after
    ``model.train()``. Makes a clip's gradient independent of the other clips in the batch."""
    for norm in batch_norms(model):
        norm.eval()
        for p in norm.parameters():
            p.requires_grad_(False)


@contextlib.contextmanager
def statistics_from_this_batch(model: nn.Module) -> Iterator[None]:
    """Batch norms in training mode replace their running statistics by this forward pass's
    (momentum None after a reset: a cumulative average over one batch); restored afterwards."""
    norms = [n for n in batch_norms(model) if n.training and n.track_running_stats]
    momenta = [n.momentum for n in norms]
    for n in norms:
        n.reset_running_stats()
        n.momentum = None
    try:
        yield
    finally:
        for n, m in zip(norms, momenta):
            n.momentum = m
