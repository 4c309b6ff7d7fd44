"""MobileOneTSM: a MobileOne whose blocks shift channels along time.

TSM: Temporal Shift Module for Efficient Video Understanding,
https://arxiv.org/abs/1811.08383, on MobileOne (https://arxiv.org/abs/2206.04040).
Arguments, defaults, module paths and state-dict keys are MMAction2 1.2.0's
``MobileOneTSM``; where that class is wrong this one differs, as listed in
``docs/defects.md``.

The shift wraps whole blocks (``stage1.0.net``), never a branch: a branch-wise shift would
put a shift inside the sum that reparameterisation folds into one conv. Because the shift
commutes with nothing but stays outside each block, the deploy form (one conv per block)
shifts exactly as the training form does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import TemporalShift
from ..shift import ShiftMode, check_num_segments, check_shift_div, check_shift_mode
from .mobileone import MobileOne, MobileOneBlock


class UnshiftedSite(nn.Module):
    """A block where a shift would move ``C // shift_div = 0`` channels: it runs ``net``
    unchanged (MMAction2's shift is then the identity) and keeps the ``net`` key segment.

    With the defaults this is ``stage0``: its input is the 3-channel frames.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net  # the name `net` is part of MMAction2's state-dict keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[N * T, C, H, W]``. Returns: ``net(x)``."""
        return self.net(x)


class MobileOneTSM(MobileOne):
    """MobileOne backbone for TSM: every block (``stage0`` too) is wrapped in a shift.

    Keys are ``stage0.net.branch_conv_list.0.conv.weight``,
    ``stage1.0.net.branch_reparam.weight`` (deploy form) and so on.

    Args:
        arch: ``'s0'`` ... ``'s4'`` or a dict (see :class:`tsmnet.MobileOne`).
        num_segments: Frames per clip ``T``; inputs are ``[N * T, C, H, W]``. Defaults to 8.
        is_shift: Insert temporal shifts. Defaults to True.
        shift_div: Each shift moves ``C // shift_div`` channels per direction. Defaults to 8.
        pretrained2d: An ``init_cfg`` ``Pretrained`` checkpoint is a 2D (ImageNet) MobileOne,
            whose keys get the shift's ``net`` segment; with no such checkpoint the network is
            initialised from scratch. Either way, keys are matched to the model's wrappers and
            loaded strictly. Defaults to True.
        shift_mode: ``'bidirectional'`` (default, the reference behaviour) or ``'causal'``
            (each frame reads the past only, for :class:`tsmnet.TSMStream`).
        **kwargs: Arguments of :class:`tsmnet.MobileOne` (``in_channels``, ``out_indices``,
            ``frozen_stages``, ``deploy``, ``norm_eval``, ``init_cfg`` ...).
    """

    #: MMAction2's forward unpacks a single stage's output.
    single_output_as_tensor = True

    def __init__(self, arch: str | dict[str, Any] = 's0', num_segments: int = 8,
                 is_shift: bool = True, shift_div: int = 8, pretrained2d: bool = True,
                 shift_mode: ShiftMode = 'bidirectional', **kwargs: Any) -> None:
        super().__init__(arch, **kwargs)
        check_num_segments(num_segments)
        check_shift_mode(shift_mode)
        if is_shift:
            check_shift_div(shift_div, shift_mode)
        self.num_segments = num_segments
        self.is_shift = is_shift
        self.shift_div = shift_div
        self.shift_mode = shift_mode
        self.pretrained2d = pretrained2d
        if is_shift:
            self._check_fold()
        self.init_structure()

    def _check_fold(self) -> None:
        """Refuse a ``shift_div`` that leaves a block after ``stage0`` nothing to shift."""
        least = min(block.in_channels for name in self.stages
                    for block in getattr(self, name))
        if least // self.shift_div == 0:
            raise ValueError(f'shift_div={self.shift_div} leaves no channel to shift: the '
                             f'narrowest block input has {least} channels, so shift_div must '
                             f'be <= {least}')

    def init_structure(self) -> None:
        """Insert the shifts into the plain MobileOne."""
        if self.is_shift:
            self.make_temporal_shift()

    def make_site(self, block: MobileOneBlock, inplace: bool) -> nn.Module:
        """The shift around one block (an :class:`UnshiftedSite` where no channel would move).

        ``inplace``: the block input is read by nothing else while the block runs (true
        inside a stage), so inference may shift it in place and back."""
        if block.in_channels // self.shift_div == 0:
            return UnshiftedSite(block)
        return TemporalShift(block, self.num_segments, self.shift_div, self.shift_mode,
                             inplace=inplace)

    def make_temporal_shift(self) -> None:
        """Wrap every block: ``stage0`` (whose input is the caller's frames, so never shifted
        in place) and each block of ``stage1`` ... ``stage4``."""
        self.stage0 = self.make_site(self.stage0, inplace=False)
        for name in self.stages:
            setattr(self, name, nn.Sequential(*(self.make_site(block, inplace=True)
                                                for block in getattr(self, name))))

    def _get_wrap_prefix(self) -> list[str]:
        """The module names that wrappers insert into keys (removed to match a 2D network)."""
        return ['.net']

    def init_weights(self) -> None:
        """Load ``init_cfg``'s ``Pretrained`` checkpoint (2D or video keys, ``prefix`` applied,
        strictly), or initialise from scratch when there is none (MMAction2's crashes then).
        ``pretrained2d`` is kept for MMAction2's signature: the key layout is read off the
        file either way."""
        super().init_weights()
