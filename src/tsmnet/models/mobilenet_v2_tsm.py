"""MobileNetV2TSM: a MobileNetV2 whose inverted residuals shift channels along time.

TSM: Temporal Shift Module for Efficient Video Understanding,
https://arxiv.org/abs/1811.08383 (the paper's online model is this network with a causal
shift). Arguments, defaults, module paths and state-dict keys are MMAction2 1.2.0's
``MobileNetV2TSM``; where that class is wrong this one differs, as listed in
``docs/mobilenet_v2.md``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..layers import TemporalShift
from ..shift import ShiftMode, check_num_segments, check_shift_div, check_shift_mode
from ..weights.checkpoint import load_pretrained
from .mobilenet_v2 import InvertedResidual, MobileNetV2


def is_shift_site(block: nn.Module) -> bool:
    """An inverted residual that TSM shifts: one with an expansion conv (three convs) and a
    residual connection (10 blocks at ``widen_factor=1.0``)."""
    return isinstance(block, InvertedResidual) and len(block.conv) == 3 and \
        block.use_res_connect


class MobileNetV2TSM(MobileNetV2):
    """MobileNetV2 backbone for TSM.

    The shift wraps ``conv[0]`` (the 1x1 expansion ``ConvModule``) of every inverted residual
    with three convs and a residual connection, so its keys are
    ``layerX.Y.conv.0.net.conv.weight``.

    Args:
        num_segments: Frames per clip ``T``; inputs are ``[N * T, 3, H, W]``. Defaults to 8.
        is_shift: Insert temporal shifts. Defaults to True.
        shift_div: Each shift moves ``C // shift_div`` channels per direction. Defaults to 8.
        pretrained2d: ``pretrained`` is a 2D ImageNet checkpoint (MMPretrain's
            ``mmcls://mobilenet_v2`` or a torchvision MobileNetV2) whose keys are converted;
            with ``pretrained=None`` the network is initialised from scratch. Defaults to True.
        shift_mode: ``'bidirectional'`` (default, the reference behaviour) or ``'causal'``
            (each frame reads the past only, for online inference with
            :class:`tsmnet.TSMStream`).
        **kwargs: Arguments of :class:`tsmnet.MobileNetV2`.
    """

    def __init__(self, num_segments: int = 8, is_shift: bool = True, shift_div: int = 8,
                 pretrained2d: bool = True, shift_mode: ShiftMode = 'bidirectional',
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
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

    def _sites(self) -> list[InvertedResidual]:
        return [m for m in self.modules() if is_shift_site(m)]

    def _check_fold(self) -> None:
        """Refuse a ``shift_div`` that would leave a shifted site with no channel to move."""
        sites = self._sites()
        if not sites:
            return
        least = min(block.conv[0].conv.in_channels for block in sites)
        if least // self.shift_div == 0:
            raise ValueError(f'shift_div={self.shift_div} leaves no channel to shift: the '
                             f'narrowest shifted input has {least} channels, so shift_div must '
                             f'be <= {least}')

    def init_structure(self) -> None:
        """Insert the shifts into the plain MobileNetV2."""
        if self.is_shift:
            self.make_temporal_shift()

    def make_temporal_shift(self) -> None:
        """Wrap ``conv[0]`` of each shift site in a :class:`TemporalShift`. Its input is the
        block input, which the residual reads only after ``conv`` has run, so inference may
        shift it in place."""
        for block in self._sites():
            block.conv[0] = TemporalShift(block.conv[0], self.num_segments, self.shift_div,
                                          self.shift_mode, inplace=True)

    def _get_wrap_prefix(self) -> list[str]:
        """The module names that wrappers insert into keys (removed to match a 2D network)."""
        return ['.net']

    def load_original_weights(self, logger: Any = None) -> None:
        """Load the 2D checkpoint ``pretrained`` into the wrapped network, strictly."""
        load_pretrained(self, self.pretrained, torchvision=True)

    def init_weights(self) -> None:
        """Load ``pretrained`` (converted from a 2D checkpoint if ``pretrained2d``), or
        initialise from scratch when there is no checkpoint (MMAction2's crashes then)."""
        if self.pretrained is None:
            super().init_weights()  # init_cfg
        elif self.pretrained2d:
            self.load_original_weights()
        else:
            load_pretrained(self, self.pretrained, torchvision=False)

