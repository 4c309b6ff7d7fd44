"""ResNetTSM: a ResNet whose blocks shift channels along time.

TSM: Temporal Shift Module for Efficient Video Understanding,
https://arxiv.org/abs/1811.08383. Arguments, defaults, module paths and state-dict keys are
MMAction2 1.2.0's ``ResNetTSM``; where that class is wrong this one differs, as listed in the
README ("Fixed defects of the reference").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..layers import NL3DWrapper, TemporalPool, TemporalShift
from ..shift import ShiftMode, check_num_segments, check_shift_div, check_shift_mode
from ..weights.checkpoint import load_pretrained
from .frames import check_frames_input
from .resnet import ResNet

ShiftPlace = Literal['block', 'blockres']
SHIFT_PLACES: tuple[str, ...] = ('block', 'blockres')


class ResNetTSM(ResNet):
    """ResNet backbone for TSM.

    Args:
        depth: 18, 34, 50, 101 or 152.
        num_segments: Frames per clip ``T``; inputs are ``[N * T, C, H, W]``. Defaults to 8.
        is_shift: Insert temporal shifts. Defaults to True.
        non_local: Per stage, which blocks get a non-local block after them: a sequence of
            0/1 with one entry per block (an int applies to every block of the stage).
            Defaults to ``(0, 0, 0, 0)``.
        non_local_cfg: Keyword arguments of ``mmcv.cnn.NonLocal3d``; required when
            ``non_local`` asks for any block. Defaults to None.
        shift_div: Each shift moves ``C // shift_div`` channels per direction. Defaults to 8.
        shift_place: ``'blockres'`` shifts the input of the first conv of the residual branch
            (every other block when layer3 has 23 or more blocks); ``'block'`` shifts the
            input of the whole block. Defaults to ``'blockres'``.
        temporal_pool: Max-pool time by 2 before layer2; later stages see
            ``ceil(T / 2)`` frames per clip. Defaults to False.
        pretrained2d: ``pretrained`` is a 2D (torchvision) ImageNet checkpoint whose keys are
            converted; with ``pretrained=None`` the network is initialised from scratch.
            Defaults to True.
        shift_mode: ``'bidirectional'`` (default, the reference behaviour) or ``'causal'``
            (each frame reads the past only, for online inference).
        **kwargs: Arguments of :class:`tsmnet.ResNet`.
    """

    def __init__(self, depth: int, num_segments: int = 8, is_shift: bool = True,
                 non_local: Sequence[Any] = (0, 0, 0, 0),
                 non_local_cfg: dict[str, Any] | None = None, shift_div: int = 8,
                 shift_place: ShiftPlace = 'blockres', temporal_pool: bool = False,
                 pretrained2d: bool = True, shift_mode: ShiftMode = 'bidirectional',
                 **kwargs: Any) -> None:
        super().__init__(depth, **kwargs)
        check_num_segments(num_segments)
        check_shift_mode(shift_mode)
        if is_shift:
            check_shift_div(shift_div, shift_mode)
        if shift_place not in SHIFT_PLACES:
            raise ValueError(f'shift_place must be one of {SHIFT_PLACES}, got {shift_place!r}')
        if temporal_pool and num_segments < 2:
            raise ValueError(f'temporal_pool=True needs num_segments >= 2, got {num_segments}')
        if temporal_pool and self.num_stages < 2:
            raise ValueError(f'temporal_pool=True pools before layer2 and needs num_stages >= 2, '
                             f'got num_stages={self.num_stages}')
        self.num_segments = num_segments
        self.is_shift = is_shift
        self.shift_div = shift_div
        self.shift_place = shift_place
        self.shift_mode = shift_mode
        self.temporal_pool = temporal_pool
        self.non_local = non_local
        self.non_local_stages = self._expand_non_local(non_local)
        if non_local_cfg is not None and not isinstance(non_local_cfg, Mapping):
            raise TypeError(f'non_local_cfg must be a dict of NonLocal3d arguments or None, '
                            f'got {non_local_cfg!r}')
        self.non_local_cfg = dict(non_local_cfg or {})
        if any(any(s) for s in self.non_local_stages) and not self.non_local_cfg:
            raise ValueError('non_local asks for non-local blocks but non_local_cfg is empty: '
                             'give the NonLocal3d arguments, e.g. '
                             "non_local_cfg=dict(mode='embedded_gaussian', sub_sample=True)")
        self.pretrained2d = pretrained2d
        if is_shift:
            self._check_fold()
        self.init_structure()

    def _expand_non_local(self, non_local: Sequence[Any]) -> tuple[tuple[int, ...], ...]:
        """One 0/1 flag per block of each stage, from the ``non_local`` argument."""
        if isinstance(non_local, (str, bytes)) or not isinstance(non_local, Sequence):
            raise TypeError(f'non_local must be a sequence with one entry per stage, '
                            f'got {non_local!r}')
        stages = list(non_local)
        if len(stages) > self.num_stages and not any(
                (s if isinstance(s, int) else any(s)) for s in stages[self.num_stages:]):
            stages = stages[:self.num_stages]  # the default (0, 0, 0, 0) with fewer stages
        if len(stages) != self.num_stages:
            raise ValueError(f'non_local must have one entry per stage ({self.num_stages}), '
                             f'got {len(stages)}: {non_local!r}')
        expanded = []
        for i, (flags, blocks) in enumerate(zip(stages, self.stage_blocks)):
            flags = (flags,) * blocks if isinstance(flags, int) else tuple(flags)
            if len(flags) != blocks:
                raise ValueError(f'non_local[{i}] must have one flag per block of stage {i + 1} '
                                 f'({blocks} blocks for depth {self.depth}), got {len(flags)}')
            expanded.append(tuple(int(bool(f)) for f in flags))
        return tuple(expanded)

    def _check_fold(self) -> None:
        """Refuse a ``shift_div`` that would leave a shifted site with no channel to move."""
        least = min(stage[0].conv1.conv.in_channels for stage in self._stages())
        if least // self.shift_div == 0:
            raise ValueError(f'shift_div={self.shift_div} leaves no channel to shift: the '
                             f'narrowest shifted input has {least} channels, so shift_div must '
                             f'be <= {least}')

    def _stages(self) -> list[nn.Sequential]:
        return [getattr(self, name) for name in self.res_layers]

    @property
    def stage_segments(self) -> tuple[int, ...]:
        """Frames per clip that each stage sees (fewer after a temporal pool)."""
        pooled = math.ceil(self.num_segments / 2) if self.temporal_pool else self.num_segments
        return (self.num_segments,) + (pooled,) * (self.num_stages - 1)

    def init_structure(self) -> None:
        """Insert shifts, non-local blocks and the temporal pool into the plain ResNet."""
        if self.is_shift:
            self.make_temporal_shift()
        if any(any(s) for s in self.non_local_stages):
            self.make_non_local()
        if self.temporal_pool:
            self.make_temporal_pool()

    def make_temporal_shift(self) -> None:
        """Wrap each block ('block') or each first conv of the residual branch ('blockres')
        in a :class:`TemporalShift`; their inputs are block inputs, which no other module
        reads while the wrapped one runs, so inference may shift them in place."""
        # ResNet-101/152 (23 or more blocks in layer3) shift every other block; read from the
        # depth, not from self.layer3, which a model with num_stages < 3 does not have
        every = 2 if self.arch_settings[self.depth][1][2] >= 23 else 1
        for name, segments in zip(self.res_layers, self.stage_segments):
            stage = getattr(self, name)
            for i, block in enumerate(stage):
                if self.shift_place == 'block':
                    stage[i] = TemporalShift(block, segments, self.shift_div, self.shift_mode,
                                             inplace=True)
                elif i % every == 0:
                    block.conv1.conv = TemporalShift(block.conv1.conv, segments, self.shift_div,
                                                     self.shift_mode, inplace=True)

    def make_temporal_pool(self) -> None:
        """Max-pool time by 2 before layer2."""
        self.layer2 = TemporalPool(self.layer2, self.num_segments)

    def make_non_local(self) -> None:
        """Follow the flagged blocks with a :class:`NL3DWrapper` that sees its stage's clips."""
        for stage, flags, segments in zip(self._stages(), self.non_local_stages,
                                          self.stage_segments):
            for i, flag in enumerate(flags):
                if flag:
                    stage[i] = NL3DWrapper(stage[i], segments, self.non_local_cfg)

    def _get_wrap_prefix(self) -> list[str]:
        """The module names that wrappers insert into keys (removed to match a 2D ResNet)."""
        return ['.net', '.block']

    def load_original_weights(self, logger: Any = None) -> None:
        """Load the 2D checkpoint ``pretrained`` (torchvision keys) into the wrapped network."""
        load_pretrained(self, self.pretrained, torchvision=True)

    def init_weights(self) -> None:
        """Load ``pretrained`` (converted from a 2D checkpoint if ``pretrained2d``), or
        initialise from scratch when there is no checkpoint."""
        if self.pretrained is None:
            super().init_weights()
        elif self.pretrained2d:
            self.load_original_weights()
        else:
            load_pretrained(self, self.pretrained, torchvision=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Args: x: ``[N * T, in_channels, H, W]``, the ``T = num_segments`` frames of each
        clip adjacent.

        Returns: Features ``[N * T', C, H', W']`` of each stage in ``out_indices`` (``T'`` is
        ``ceil(T / 2)`` after a temporal pool); one tensor when there is one.
        """
        check_frames_input(self, x, self.in_channels, self.num_segments)
        return super().forward(x)
