"""The loss and accuracy curves of a run as a PNG (matplotlib, the ``demo`` extra)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..fileio import atomic_write

LOGGER = logging.getLogger(__name__)


def save_plot(history: Sequence[Any], path: Path) -> bool:
    """Plot ``history`` (records with ``epoch``, ``train_loss``, ``train_acc``, ``val_acc``).

    Returns:
        Whether the plot was written (False without matplotlib, with a warning).
    """
    try:
        import matplotlib
    except ImportError:
        LOGGER.warning("no plot: matplotlib is not installed (pip install 'tsmnet[demo]')")
        return False
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
    return True
