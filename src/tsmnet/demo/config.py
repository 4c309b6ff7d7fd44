"""The settings of ``tsmnet demo`` (no heavy imports: the command line reads the defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DemoConfig:
    """Settings of a demo run; the defaults finish in a few minutes on a 2-core CPU.

    Args:
        steps: Training steps of each model. Defaults to 100.
        depth: ResNet depth. Defaults to 18.
        num_segments: Frames per clip. Defaults to 8.
        size: Frame height and width in pixels. Defaults to 32.
        batch_size: Clips per training step. Defaults to 8.
        lr: Peak learning rate of AdamW (one-cycle schedule). Defaults to 1e-3.
        weight_decay: AdamW weight decay. Defaults to 1e-4.
        val_pairs: Validation clips come in pairs, a clip and its reverse (labels 0 and 1):
            ``2 * val_pairs`` clips. Defaults to 128.
        evals: Validation points on the curves (the last one after the last step).
            Defaults to 5.
        seed: Seed of the data and of the initial weights. Defaults to 0.
        device: Torch device. Defaults to ``'cpu'``.
        out: Output folder. Defaults to ``'tsmnet_demo'``.
    """

    steps: int = 100
    depth: int = 18
    num_segments: int = 8
    size: int = 32
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_pairs: int = 128
    evals: int = 5
    seed: int = 0
    device: str = 'cpu'
    out: str = 'tsmnet_demo'

    def __post_init__(self) -> None:
        for name in ('steps', 'num_segments', 'batch_size', 'val_pairs', 'evals'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if self.num_segments < 2:
            raise ValueError(f'num_segments must be >= 2 (motion needs two frames), '
                             f'got {self.num_segments}')
        if self.size < 16:
            raise ValueError(f'size must be >= 16, got {self.size}')
        if self.lr <= 0:
            raise ValueError(f'lr must be > 0, got {self.lr}')
