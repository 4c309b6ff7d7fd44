"""The 2D MobileNetV2 that MobileNetV2TSM builds on, with MMAction2 1.2.0's arguments and keys.

MobileNetV2: Inverted Residuals and Linear Bottlenecks, https://arxiv.org/abs/1801.04381.
Every conv sits in an mmcv ``ConvModule`` (``conv1.conv``, ``layer1.0.conv.0.bn``), because
MMAction2's and MMPretrain's checkpoints are keyed that way.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn
from torch.utils import checkpoint as cp

from ..archs import MOBILENET_V2_STAGES
from ..weights.checkpoint import load_pretrained, unwrapped_keys
from .frames import check_frames_input
from .frozen_stages import FrozenStages
from .init_log import init_info_at_debug
from .layer_cfgs import act_cfg_or_default, conv_cfg_or_default, norm_cfg_or_default

#: Per stage: expand ratio, output channels (at width 1.0), blocks, stride of the first block.
ARCH_SETTINGS = MOBILENET_V2_STAGES  # the one table: tsmnet.archs
#: ``out_indices`` and ``frozen_stages`` count ``layer1`` ... ``layer7`` and then ``conv2``.
NUM_STAGES = len(ARCH_SETTINGS) + 1


def make_divisible(value: float, divisor: int, min_value: int | None = None,
                   min_ratio: float = 0.9) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (no lower than
    ``min_value``, default ``divisor``), going up when rounding would lose more than
    ``1 - min_ratio`` of ``value``."""
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < min_ratio * value:
        rounded += divisor
    return rounded


class InvertedResidual(nn.Module):
    """1x1 expansion (omitted when ``expand_ratio`` is 1), 3x3 depthwise and 1x1 linear
    projection, with a residual connection when the shape allows it.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the depthwise conv, 1 or 2.
        expand_ratio: Hidden channels are ``round(in_channels * expand_ratio)``.
        conv_cfg: mmcv conv config. Defaults to None, a plain conv.
        norm_cfg: mmcv norm config. Defaults to None, ``dict(type='BN')``.
        act_cfg: mmcv activation config. Defaults to None, ``dict(type='ReLU6')``.
        with_cp: Recompute the block in backward to save memory. Defaults to False.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: float,
                 conv_cfg: dict[str, Any] | None = None, norm_cfg: dict[str, Any] | None = None,
                 act_cfg: dict[str, Any] | None = None, with_cp: bool = False) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride!r}')
        norm_cfg = dict(type='BN') if norm_cfg is None else norm_cfg
        act_cfg = dict(type='ReLU6') if act_cfg is None else act_cfg
        self.stride = stride
        self.with_cp = with_cp
        self.use_res_connect = stride == 1 and in_channels == out_channels
        hidden = int(round(in_channels * expand_ratio))
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvModule(in_channels, hidden, kernel_size=1, act_cfg=act_cfg,
                                     **common))
        layers.append(ConvModule(hidden, hidden, kernel_size=3, stride=stride, padding=1,
                                 groups=hidden, act_cfg=act_cfg, **common))
        layers.append(ConvModule(hidden, out_channels, kernel_size=1, act_cfg=None, **common))
        self.conv = nn.Sequential(*layers)  # `conv.0` ... are MMAction2's keys

    def _inner(self, x: torch.Tensor) -> torch.Tensor:
        # the residual reads x after conv has run (and, for an in-place shift, restored it)
        return x + self.conv(x) if self.use_res_connect else self.conv(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[B, in_channels, H, W]``. Returns: ``[B, out_channels, H / s, W / s]``."""
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner, x, use_reentrant=False)
        return self._inner(x)


class MobileNetV2(FrozenStages, BaseModule):
    """MobileNetV2 backbone, argument for argument and key for key MMAction2 1.2.0's.

    Stages are ``layer1`` ... ``layer7`` (inverted residuals) and ``conv2`` (1x1 to 1280
    channels, ``int(1280 * widen_factor)`` above width 1), after the stem ``conv1``.

    Args:
        pretrained: A checkpoint path or URL to start from (MMAction2/MMPretrain keys, or a
            torchvision MobileNetV2, converted). Defaults to None.
        widen_factor: Width multiplier of every layer, > 0. Defaults to 1.0.
        out_indices: Stages whose outputs are returned, in 0..7 (7 is ``conv2``).
            Defaults to ``(7,)``.
        frozen_stages: Stages frozen (parameters fixed, BN in eval); -1 freezes none, 0 the
            stem only, up to 8. Defaults to -1.
        conv_cfg: Conv config. Defaults to None, ``dict(type='Conv2d')`` (mmcv's ``'Conv'`` wrapper
            is built as the plain ``nn.Conv2d`` too; models/layer_cfgs.py).
        norm_cfg: Norm config. Defaults to None, ``dict(type='BN2d', requires_grad=True)``.
        act_cfg: Activation config. Defaults to None, ``dict(type='ReLU6', inplace=True)``.
        norm_eval: Keep BN layers in eval mode while training. Defaults to False.
        with_cp: Gradient checkpointing of each block. Defaults to False.
        init_cfg: MMEngine init config. Defaults to None, Kaiming for ``Conv2d`` and constant
            1 for ``GroupNorm`` and BN.
    """

    arch_settings = [list(s) for s in ARCH_SETTINGS]  # MMAction2's attribute (lists)

    def __init__(self, pretrained: str | None = None, widen_factor: float = 1.,
                 out_indices: Sequence[int] = (7,), frozen_stages: int = -1,
                 conv_cfg: dict[str, Any] | None = None, norm_cfg: dict[str, Any] | None = None,
                 act_cfg: dict[str, Any] | None = None, norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                        dict(type='Constant', layer=['GroupNorm', '_BatchNorm'], val=1.)]
        if pretrained is not None and not isinstance(pretrained, str):
            raise TypeError(f'pretrained must be a str or None, got {type(pretrained).__name__}')
        super().__init__(init_cfg=init_cfg)
        if isinstance(widen_factor, bool) or not isinstance(widen_factor, numbers.Real):
            raise TypeError(f'widen_factor must be a number, got {widen_factor!r}')
        if not widen_factor > 0:
            raise ValueError(f'widen_factor must be > 0, got {widen_factor!r}')
        if isinstance(out_indices, (str, bytes)) or not isinstance(out_indices, Sequence):
            raise TypeError(f'out_indices must be a sequence of ints, e.g. a tuple, '
                            f'got {out_indices!r}')
        if not out_indices or not all(isinstance(i, int) and not isinstance(i, bool)
                                      and 0 <= i < NUM_STAGES for i in out_indices):
            raise ValueError(f'out_indices must be stage indices in [0, {NUM_STAGES - 1}] '
                             f'(layer1..layer7, then conv2), got {tuple(out_indices)}')
        if (isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int)
                or not -1 <= frozen_stages <= NUM_STAGES):
            raise ValueError(f'frozen_stages must be an int from -1 to {NUM_STAGES}, '
                             f'got {frozen_stages!r}')
        self.pretrained = pretrained
        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg_or_default(conv_cfg)
        self.norm_cfg = norm_cfg_or_default(norm_cfg)
        self.act_cfg = act_cfg_or_default(act_cfg, 'ReLU6')
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        # `in_channels` is the running channel count while building, as in MMAction2
        # (it ends as the input channels of conv2); the frames always have 3 channels
        self.in_channels = make_divisible(32 * widen_factor, 8)
        self.conv1 = ConvModule(3, self.in_channels, kernel_size=3, stride=2, padding=1,
                                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                act_cfg=self.act_cfg)
        self.layers: list[str] = []
        for i, (expand_ratio, channels, blocks, stride) in enumerate(ARCH_SETTINGS):
            out_channels = make_divisible(channels * widen_factor, 8)
            self.add_module(f'layer{i + 1}', self.make_layer(out_channels, blocks, stride,
                                                             expand_ratio))
            self.layers.append(f'layer{i + 1}')
        self.out_channel = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(self.in_channels, self.out_channel, kernel_size=1,
                                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                act_cfg=self.act_cfg)
        self.layers.append('conv2')

    #: Channels of the input frames (RGB).
    input_channels: int = 3

    @property
    def feat_dim(self) -> int:
        """Channels of the last stage's output (the classifier's input)."""
        return self.out_channel

    def make_layer(self, out_channels: int, num_blocks: int, stride: int,
                   expand_ratio: float) -> nn.Sequential:
        """One stage of ``num_blocks`` inverted residuals; the first one strides."""
        blocks = []
        for i in range(num_blocks):
            blocks.append(InvertedResidual(
                self.in_channels, out_channels, stride if i == 0 else 1,
                expand_ratio=expand_ratio, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                act_cfg=self.act_cfg, with_cp=self.with_cp))
            self.in_channels = out_channels
        return nn.Sequential(*blocks)

    def init_weights(self) -> None:
        """Load ``pretrained`` (strictly; MMAction2, MMPretrain or torchvision keys), or
        initialise from ``init_cfg`` when there is no checkpoint."""
        if self.pretrained is None:
            with init_info_at_debug():  # MMEngine's per-parameter report: DEBUG, not INFO
                super().init_weights()
            return
        load_pretrained(self, self.pretrained, torchvision=True)

    def plain_2d_modules(self) -> set[str]:
        """Names of the ConvModules (conv + norm) of the plain 2D MobileNetV2, read off the
        architecture table (:mod:`tsmnet.archs`): ``conv1``, ``layerI.J.conv.K`` (three
        convs, or two in a block that does not expand) and ``conv2``."""
        names = {'conv1', 'conv2'}
        for i, (expand_ratio, _, blocks, _) in enumerate(ARCH_SETTINGS):
            convs = 3 if expand_ratio != 1 else 2
            names.update(f'layer{i + 1}.{j}.conv.{k}' for j in range(blocks) for k in range(convs))
        return names

    def plain_2d_keys(self) -> set[str]:
        """State-dict keys (wrapper segments removed) of this model that the plain 2D
        MobileNetV2 of its width also has: the keys a 2D (ImageNet) checkpoint can fill (see
        :func:`tsmnet.weights.checkpoint.match_state_dict`)."""
        return unwrapped_keys(self, self.plain_2d_modules())

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Args: x: ``[B, 3, H, W]``.

        Returns: The output of each stage in ``out_indices``; one tensor when there is one.
        """
        check_frames_input(self, x, self.input_channels, getattr(self, 'num_segments', 1))
        return self.forward_stages(x)

    def forward_stages(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The network without the input checks (also run frame by frame by TSMStream)."""
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _frozen_modules(self) -> list[nn.Module]:
        return ([self.conv1] if self.frozen_stages >= 0 else []) + \
            [getattr(self, name) for name in self.layers[:max(self.frozen_stages, 0)]]


#: Widths tried first when reading ``widen_factor`` off a checkpoint (the published ones).
_COMMON_WIDTHS: tuple[float, ...] = (1.0, 0.5, 0.75, 1.4, 1.3, 0.35, 0.25, 2.0)


def stage_channels_for(widen_factor: float) -> tuple[int, ...]:
    """Output channels of ``conv1``, ``layer1`` ... ``layer7`` and ``conv2`` at a width."""
    last = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
    return (make_divisible(32 * widen_factor, 8),
            *(make_divisible(c * widen_factor, 8) for _, c, _, _ in ARCH_SETTINGS), last)


def widen_factor_for(channels: Sequence[int]) -> float | None:
    """The ``widen_factor`` whose stage channels are ``channels`` (see
    :func:`stage_channels_for`), a published width first; None if no width in
    0.05 ... 3.0 fits."""
    candidates = _COMMON_WIDTHS + tuple(round(0.05 * i, 2) for i in range(1, 61))
    return next((w for w in candidates if stage_channels_for(w) == tuple(channels)), None)
