"""One frame as a model input, by a protocol's single view: what a stream feeds each step.

A live stream has no clip to sample; each frame goes through the rest of the test pipeline of
:class:`~.pipeline.VideoTransform` with one center crop: ``Resize(-1, resize_short)``,
``CenterCrop(crop_size)`` and the protocol's mean and std. A frame transformed alone equals
that frame in ``VideoTransform`` of a center-crop protocol, to the bit.
"""

from __future__ import annotations

import numpy as np
import torch

from . import transforms
from .protocol import TestProtocol

__all__ = ['FrameTransform', 'single_view_protocol']


def single_view_protocol(crop_size: int = 224, mean: tuple[float, float, float] | None = None,
                         std: tuple[float, float, float] | None = None) -> TestProtocol:
    """The center-crop protocol of a frame size: the short side resized to ``crop_size *
    256 / 224`` (MMAction2's ``Resize(-1, 256)`` before a 224 crop), then the crop.

    Args:
        crop_size: the model's input side.
        mean: RGB means on the 0-255 scale (default: MMAction2's TSM configs', ImageNet's).
        std: RGB standard deviations (default: likewise).
    """
    defaults = TestProtocol()
    return TestProtocol(resize_short=max(crop_size, round(crop_size * 256 / 224)),
                        crop='center', crop_size=crop_size,
                        mean=defaults.mean if mean is None else tuple(mean),
                        std=defaults.std if std is None else tuple(std))


class FrameTransform:
    """A decoded frame -> the normalised center view a per-frame model takes.

    Args:
        protocol: its ``resize_short``, ``crop_size``, ``mean`` and ``std`` are used (the crop
            is always the center one, the sampling fields are ignored).

    Example:
        >>> transform = FrameTransform(single_view_protocol(224))
        >>> x = transform(np.zeros((480, 640, 3), np.uint8))  # [3, 224, 224] float32
    """

    def __init__(self, protocol: TestProtocol) -> None:
        self.protocol = protocol

    def __call__(self, frame: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Transform one frame.

        Args:
            frame: ``[H, W]`` or ``[H, W, C]`` uint8 (grey, RGB or RGBA).

        Returns:
            ``[3, crop_size, crop_size]`` float32.
        """
        if frame.ndim not in (2, 3):
            raise ValueError(f'frame must be [H, W] or [H, W, C], got shape {list(frame.shape)}')
        frames = frame[None]
        p = self.protocol
        rgb = transforms.resize_short_side(transforms.as_rgb(frames), p.resize_short)
        crop = transforms.center_crop(rgb, p.crop_size)
        return transforms.normalize(crop, p.mean, p.std)[0, 0]

    def __repr__(self) -> str:
        p = self.protocol
        return (f'{type(self).__name__}(resize_short={p.resize_short}, crop_size={p.crop_size}, '
                f'mean={p.mean}, std={p.std})')
