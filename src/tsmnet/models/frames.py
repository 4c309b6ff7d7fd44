"""The input check that every backbone's ``forward`` makes: frames ``[N * T, C, H, W]``
(:func:`tsmnet.shift.spec.check_clip_frames`) of the model's channels and dtype."""

from __future__ import annotations

import torch
from torch import nn

from ..shift.spec import check_clip_frames


def check_frames_input(model: nn.Module, x: object, in_channels: int,
                       num_segments: int = 1) -> None:
    """Raise a clear ``TypeError``/``ValueError`` unless ``x`` is frames that ``model`` takes:
    a floating-point ``[N * T, in_channels, H, W]`` tensor with ``T = num_segments``, in the
    parameters' dtype (or under autocast)."""
    if isinstance(x, torch.fx.Proxy):  # torch.fx.symbolic_trace: no values to check
        return
    check_clip_frames(x, num_segments, 'input', nonempty=True)
    if x.shape[1] != in_channels:
        raise ValueError(f'input must have in_channels={in_channels} channels, got {x.shape[1]} '
                         f'(shape {tuple(x.shape)})')
    if 0 in x.shape[2:]:
        raise ValueError(f'input frames must have H, W >= 1, got shape {tuple(x.shape)}')
    if not x.is_floating_point():
        raise TypeError(f'input must be a floating-point tensor, got {x.dtype}')
    weight = next(model.parameters(), None)
    if (weight is not None and x.dtype != weight.dtype
            and not torch.is_autocast_enabled(x.device.type)):
        raise TypeError(f'input dtype {x.dtype} differs from the model parameters\' '
                        f'{weight.dtype}: convert one of them (x.to(dtype) or '
                        f'model.to(dtype)), or run under torch.autocast')


def channels_last_clips(clips: torch.Tensor) -> torch.Tensor:
    """Clips ``[N, T, C, H, W]`` with each frame laid out channels-last (the same values):
    what a channels-last model runs fastest on CPUs (its convs then need no layout changes)."""
    n, t = clips.shape[:2]
    return clips.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (n, t))
