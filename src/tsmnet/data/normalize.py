"""``ClipNormalizer``: uint8 clips to the model's normalised float input, a batch at a time in
the training process (MMAction2's ``ActionDataPreprocessor``).

Why not in the DataLoader workers: a uint8 clip is a quarter of the bytes of its float32 form
to write to shared memory (and to copy to a GPU), and one batch-wide pass in the training
process costs less than per-item passes in the workers, which are the bottleneck on CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .pipelines import MEAN, STD


@dataclass(frozen=True)
class ClipNormalizer:
    """``(x - mean) / std`` per RGB channel of uint8 clips ``[..., 3, H, W]``.

    The same float32 arithmetic as :func:`tsmnet.video.transforms.normalize` (so a pipeline
    with ``normalize=False`` followed by this gives the bits of the one with
    ``normalize=True``). Float clips are taken as normalised already and pass unchanged.

    Args:
        mean: RGB mean on the 0-255 scale. Defaults to MMAction2's ImageNet mean.
        std: RGB std on the 0-255 scale. Defaults to MMAction2's ImageNet std.
        channels_last: lay each frame of ``[N, T, 3, H, W]`` clips out channels-last (what a
            channels-last model runs fastest on, on CPUs). Defaults to False.
    """

    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    channels_last: bool = False

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f'ClipNormalizer: mean and std must have 3 values (RGB), got '
                             f'{self.mean!r} and {self.std!r}')
        if min(self.std) <= 0:
            raise ValueError(f'ClipNormalizer: std must be positive, got {self.std!r}')

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.dim() < 3 or clips.shape[-3] != 3:
            raise ValueError(f'ClipNormalizer: clips must be [..., 3, H, W], got '
                             f'{tuple(clips.shape)}')
        if self.channels_last and clips.dim() != 5:
            raise ValueError(f'ClipNormalizer: channels_last needs clips [N, T, 3, H, W], got '
                             f'{tuple(clips.shape)}')
        if self.channels_last:  # on the uint8 bytes: a quarter of the copy
            n, t = clips.shape[:2]
            clips = clips.flatten(0, 1).contiguous(memory_format=torch.channels_last) \
                .unflatten(0, (n, t))
        if clips.dtype == torch.uint8:
            shape = (3, 1, 1)
            mean = torch.tensor(self.mean, dtype=torch.float32, device=clips.device).view(shape)
            std = torch.tensor(self.std, dtype=torch.float32, device=clips.device).view(shape)
            return clips.float().sub_(mean).div_(std)  # .float() keeps the layout
        if not clips.is_floating_point():
            raise TypeError(f'ClipNormalizer: clips must be uint8 (to normalise) or float '
                            f'(normalised), got {clips.dtype}')
        return clips
