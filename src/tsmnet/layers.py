"""Modules that give a per-frame 2D network a time axis: shift, pool and non-local.

All of them take and return frames ``[N * T, C, H, W]`` with the ``T`` frames of a clip
adjacent, as MMAction2's ``Recognizer2D`` feeds its backbone.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from mmcv.cnn import NonLocal3d
from torch import nn

from ._torch_compat import ConvBase
from .shift import (
    ShiftMode,
    check_num_segments,
    check_shift_div,
    check_shift_mode,
    shift_then,
    temporal_shift,
)
from .shift.spec import check_clip_frames

# torch.fx.symbolic_trace records the shift as one call (a leaf), not its tensor checks. The
# wrap is keyed on this module's globals: it changes how fx traces this file's calls of
# temporal_shift and nothing else (the documented fx behaviour, tests/shift/test_contracts.py).
torch.fx.wrap('temporal_shift')


class TemporalShift(nn.Module):
    """Shift a fold of channels along time, then run ``net``.

    TSM: Temporal Shift Module for Efficient Video Understanding,
    https://arxiv.org/abs/1811.08383. See :func:`tsmnet.temporal_shift` for the shift itself.

    Args:
        net: The per-frame module that follows the shift (a conv, or a whole residual block).
        num_segments: Frames per clip ``T``. Defaults to 8.
        shift_div: The fold is ``C // shift_div`` channels. Defaults to 8.
        shift_mode: ``'bidirectional'`` (default) or ``'causal'`` (past frames only).
        inplace: On the CPU, shift the input in place, run ``net`` and shift it back
            (:mod:`tsmnet.shift`): in inference, and in training where shift and
            conv run fused, eager or compiled. Same numbers, less memory traffic, no
            allocation. Only for inputs nothing else reads while ``net`` runs, as inside
            a ResNet block, which is why ResNetTSM sets it. Defaults to False.
    """

    def __init__(
        self,
        net: nn.Module,
        num_segments: int = 8,
        shift_div: int = 8,
        shift_mode: ShiftMode = 'bidirectional',
        inplace: bool = False,
    ) -> None:
        super().__init__()
        check_num_segments(num_segments)
        check_shift_mode(shift_mode)
        check_shift_div(shift_div, shift_mode)
        self.net = net  # the name `net` is part of MMAction2's state-dict keys
        self.num_segments = num_segments
        self.shift_div = shift_div
        self.shift_mode = shift_mode
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[N * T, C, H, W]``. Returns: ``net`` of the shifted frames.

        One call into :func:`tsmnet.shift.shift_then`, which chooses how: a shifted copy, the
        input shifted in place and back (``inplace``, no autograd, no forward hooks that could
        keep what ``net`` consumed), or, in training with a plain conv as ``net``, shift and
        conv fused so that autograd keeps ``x`` instead of a shifted copy. Under
        ``torch.compile`` an ``inplace`` shift before a plain conv is one registered op
        that does the same in place (CPU); tracing, export and every other compiled shift
        see a copying shift followed by ``net``. A subclass that overrides :meth:`shift`
        gets ``net(self.shift(x))``, and so does ``torch.fx.symbolic_trace`` (the shift as a
        leaf function, ``net`` traced through).
        """
        if type(self).shift is not TemporalShift.shift or isinstance(x, torch.fx.Proxy):
            return self.net(self.shift(x))  # an FX trace records the shift, then net
        return shift_then(self.net, x, self.num_segments, self.shift_div, self.shift_mode,
                          in_place=self.inplace)

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """The shift alone, ``[N * T, C, H, W]`` to the same shape."""
        return temporal_shift(x, self.num_segments, self.shift_div, self.shift_mode)

    def extra_repr(self) -> str:
        return (f'num_segments={self.num_segments}, shift_div={self.shift_div}, '
                f'shift_mode={self.shift_mode!r}')


class TemporalPool(nn.Module):
    """Max-pool time by 2 (kernel 3, stride 2, padding 1), then run ``net``.

    A clip of ``T`` frames leaves with ``ceil(T / 2)`` frames (odd ``T`` included), so the
    modules after it must be built for :attr:`out_segments` frames per clip.

    Args:
        net: The module that follows the pooling (MMAction2 wraps ``layer2``).
        num_segments: Frames per clip ``T`` on the way in, >= 2.
    """

    def __init__(self, net: nn.Module, num_segments: int) -> None:
        super().__init__()
        check_num_segments(num_segments)
        if num_segments < 2:
            raise ValueError(
                f'temporal pooling needs num_segments >= 2 frames per clip, got {num_segments}')
        self.net = net  # the name `net` is part of MMAction2's state-dict keys
        self.num_segments = num_segments
        self.max_pool3d = nn.MaxPool3d(kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))

    @property
    def out_segments(self) -> int:
        """Frames per clip after pooling: ``ceil(num_segments / 2)``."""
        return math.ceil(self.num_segments / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[N * T, C, H, W]``. Returns: ``net`` of ``[N * ceil(T / 2), C, H, W]``."""
        check_clip_frames(x, self.num_segments, 'input')
        nt, c, h, w = x.shape
        clips = x.reshape(nt // self.num_segments, self.num_segments, c, h, w).transpose(1, 2)
        pooled = self.max_pool3d(clips).transpose(1, 2)
        return self.net(pooled.reshape(-1, c, h, w))

    def extra_repr(self) -> str:
        return f'num_segments={self.num_segments}'


def block_out_channels(block: nn.Module) -> int:
    """Channels a residual block (possibly wrapped) produces: those of its last conv."""
    last = None
    for name, module in block.named_modules():
        if isinstance(module, ConvBase) and 'downsample' not in name:
            last = module
    if last is None:
        raise TypeError(f'cannot find the output channels of {type(block).__name__}: '
                        f'it holds no conv')
    return last.out_channels


class NL3DWrapper(nn.Module):
    """Run ``block``, then an mmcv ``NonLocal3d`` over the frames of each clip.

    Non-local Neural Networks, https://arxiv.org/abs/1711.07971. Works for the blocks of every
    ResNet depth (the output channels are read from the block's last conv).

    Args:
        block: A residual block, ``[N * T, C_in, H, W]`` to ``[N * T, C, H, W]``.
        num_segments: Frames per clip ``T`` at this block.
        non_local_cfg: Keyword arguments of ``mmcv.cnn.NonLocal3d`` (``mode``, ``sub_sample``,
            ``use_scale``, ``norm_cfg``...). Defaults to None, NonLocal3d's own defaults.
    """

    def __init__(self, block: nn.Module, num_segments: int,
                 non_local_cfg: dict[str, Any] | None = None) -> None:
        super().__init__()
        check_num_segments(num_segments)
        self.block = block  # the names `block` and `non_local_block` are MMAction2's keys
        self.non_local_cfg = dict(non_local_cfg or {})
        self.non_local_block = NonLocal3d(block_out_channels(block), **self.non_local_cfg)
        self.num_segments = num_segments

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[N * T, C_in, H, W]``. Returns: ``[N * T, C, H, W]``."""
        x = self.block(x)
        check_clip_frames(x, self.num_segments, 'input')
        nt, c, h, w = x.shape
        clips = x.reshape(nt // self.num_segments, self.num_segments, c, h, w)
        out = self.non_local_block(clips.transpose(1, 2).contiguous())
        return out.transpose(1, 2).reshape(nt, c, h, w)

    def extra_repr(self) -> str:
        return f'num_segments={self.num_segments}'
