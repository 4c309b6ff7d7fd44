"""The 2D ResNet that ResNetTSM builds on, with MMAction2 1.2.0's arguments and keys.

Deep Residual Learning for Image Recognition, https://arxiv.org/abs/1512.03385.
Every conv sits in an mmcv ``ConvModule`` (``conv1.conv``, ``conv1.bn``), because MMAction2's
checkpoints are keyed that way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch
from mmcv.cnn import ConvModule
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn
from torch.utils import checkpoint as cp

from ..archs import RESNET_ARCHS, STEM_CHANNELS
from ..weights.checkpoint import load_pretrained, unwrapped_keys
from .frozen_stages import FrozenStages
from .init_log import init_info_at_debug
from .layer_cfgs import act_cfg_or_default, conv_cfg_or_default, norm_cfg_or_default

Style = Literal['pytorch', 'caffe']
STYLES: tuple[str, ...] = ('pytorch', 'caffe')


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34).

    Args:
        inplanes: Input channels.
        planes: Output channels.
        stride: Stride of the first conv. Defaults to 1.
        dilation: Dilation of the first conv. Defaults to 1.
        downsample: Module applied to the identity path. Defaults to None.
        style: ``'pytorch'`` or ``'caffe'`` (the same thing for this block). Defaults to
            ``'pytorch'``.
        conv_cfg, norm_cfg, act_cfg: mmcv configs; None gives Conv, BN2d and in-place ReLU.
        with_cp: Recompute the block in backward to save memory. Defaults to False.
    """

    expansion = 1
    reads_input_only = True  # forward never writes into x: tsmnet.shift may shift it in place

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, style: Style = 'pytorch',
                 conv_cfg: dict[str, Any] | None = None, norm_cfg: dict[str, Any] | None = None,
                 act_cfg: dict[str, Any] | None = None, with_cp: bool = False) -> None:
        super().__init__()
        conv_cfg, norm_cfg = conv_cfg_or_default(conv_cfg), norm_cfg_or_default(norm_cfg)
        self.conv1 = ConvModule(inplanes, planes, kernel_size=3, stride=stride, padding=dilation,
                                dilation=dilation, bias=False, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg_or_default(act_cfg, 'ReLU'))
        self.conv2 = ConvModule(planes, planes, kernel_size=3, stride=1, padding=1, bias=False,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.style = style
        self.stride = stride
        self.dilation = dilation
        self.norm_cfg = norm_cfg
        self.with_cp = with_cp

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.conv2(self.conv1(x)) + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[B, inplanes, H, W]``. Returns: ``[B, planes, H / stride, W / stride]``."""
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1, 3x3, 1x1 convs with a residual connection (ResNet-50/101/152).

    Args:
        inplanes: Input channels.
        planes: Channels of the inner convs; the block outputs ``planes * 4``.
        stride: Spatial stride of the block. Defaults to 1.
        dilation: Dilation of the 3x3 conv. Defaults to 1.
        downsample: Module applied to the identity path. Defaults to None.
        style: ``'pytorch'`` puts the stride on the 3x3 conv, ``'caffe'`` on the first 1x1
            conv. Defaults to ``'pytorch'``.
        conv_cfg, norm_cfg, act_cfg: mmcv configs; None gives Conv, BN2d and in-place ReLU.
        with_cp: Recompute the block in backward to save memory. Defaults to False.
    """

    expansion = 4
    reads_input_only = True  # forward never writes into x: tsmnet.shift may shift it in place

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, style: Style = 'pytorch',
                 conv_cfg: dict[str, Any] | None = None, norm_cfg: dict[str, Any] | None = None,
                 act_cfg: dict[str, Any] | None = None, with_cp: bool = False) -> None:
        super().__init__()
        conv_cfg, norm_cfg = conv_cfg_or_default(conv_cfg), norm_cfg_or_default(norm_cfg)
        act_cfg = act_cfg_or_default(act_cfg, 'ReLU')
        self.inplanes = inplanes
        self.planes = planes
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.conv1 = ConvModule(inplanes, planes, kernel_size=1, stride=self.conv1_stride,
                                bias=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = ConvModule(planes, planes, kernel_size=3, stride=self.conv2_stride,
                                padding=dilation, dilation=dilation, bias=False,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv3 = ConvModule(planes, planes * self.expansion, kernel_size=1, bias=False,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.style = style
        self.stride = stride
        self.dilation = dilation
        self.norm_cfg = norm_cfg
        self.with_cp = with_cp

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.conv3(self.conv2(self.conv1(x))) + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[B, inplanes, H, W]``. Returns: ``[B, 4 * planes, H / s, W / s]``."""
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


def downsamples(expansion: int, inplanes: int, planes: int, stride: int) -> bool:
    """Whether the first block of a stage has a ``downsample`` (a 1x1 ConvModule on the
    identity): where it strides or changes the channels."""
    return stride != 1 or inplanes != planes * expansion


def make_res_layer(block: type[BasicBlock] | type[Bottleneck], inplanes: int, planes: int,
                   blocks: int, stride: int = 1, dilation: int = 1, style: Style = 'pytorch',
                   conv_cfg: dict[str, Any] | None = None, norm_cfg: dict[str, Any] | None = None,
                   act_cfg: dict[str, Any] | None = None, with_cp: bool = False) -> nn.Sequential:
    """Build one ResNet stage of ``blocks`` blocks; the first one strides and downsamples."""
    downsample = None
    if downsamples(block.expansion, inplanes, planes, stride):
        downsample = ConvModule(inplanes, planes * block.expansion, kernel_size=1, stride=stride,
                                bias=False, conv_cfg=conv_cfg_or_default(conv_cfg),
                                norm_cfg=norm_cfg_or_default(norm_cfg), act_cfg=None)
    common = dict(style=style, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg,
                  with_cp=with_cp)
    layers = [block(inplanes, planes, stride, dilation, downsample, **common)]
    layers += [block(planes * block.expansion, planes, 1, dilation, **common)
               for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet(FrozenStages, BaseModule):
    """ResNet backbone, argument for argument and key for key MMAction2 1.2.0's ``ResNet``.

    Args:
        depth: 18, 34, 50, 101 or 152.
        pretrained: A checkpoint path or URL to start from. Defaults to None.
        torchvision_pretrain: ``pretrained`` is a torchvision checkpoint whose keys are
            converted. Defaults to True.
        in_channels: Channels of the input frames. Defaults to 3.
        num_stages: Residual stages, 1 to 4. Defaults to 4.
        out_indices: Stages whose outputs are returned. Defaults to ``(3,)``.
        strides: Stride of the first block of each stage. Defaults to ``(1, 2, 2, 2)``.
        dilations: Dilation of each stage. Defaults to ``(1, 1, 1, 1)``.
        style: ``'pytorch'`` or ``'caffe'``. Defaults to ``'pytorch'``.
        frozen_stages: Stages frozen (parameters fixed, BN in eval); -1 freezes none, 0 the
            stem only. Defaults to -1.
        conv_cfg: Conv config. Defaults to None, ``dict(type='Conv2d')`` (mmcv's ``'Conv'`` wrapper
            is built as the plain ``nn.Conv2d`` too; models/layer_cfgs.py).
        norm_cfg: Norm config. Defaults to None, ``dict(type='BN2d', requires_grad=True)``.
        act_cfg: Activation config. Defaults to None, ``dict(type='ReLU', inplace=True)``.
        norm_eval: Keep BN layers in eval mode while training. Defaults to False.
        partial_bn: Freeze all BN layers but the first while training. Defaults to False.
        with_cp: Gradient checkpointing of each block. Defaults to False.
        init_cfg: MMEngine init config. Defaults to None, Kaiming for ``Conv2d`` and constant
            1 for ``BatchNorm2d``.
    """

    # MMAction2's attribute (subclasses override it), derived from the one table in tsmnet.archs
    arch_settings: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
        depth: (BasicBlock if arch.block == 'basic' else Bottleneck, arch.stage_blocks)
        for depth, arch in RESNET_ARCHS.items()
    }

    def __init__(self, depth: int, pretrained: str | None = None, torchvision_pretrain: bool = True,
                 in_channels: int = 3, num_stages: int = 4, out_indices: Sequence[int] = (3,),
                 strides: Sequence[int] = (1, 2, 2, 2), dilations: Sequence[int] = (1, 1, 1, 1),
                 style: Style = 'pytorch', frozen_stages: int = -1,
                 conv_cfg: dict[str, Any] | None = None, norm_cfg: dict[str, Any] | None = None,
                 act_cfg: dict[str, Any] | None = None, norm_eval: bool = False,
                 partial_bn: bool = False, with_cp: bool = False,
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                        dict(type='Constant', layer='BatchNorm2d', val=1.)]
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'depth must be one of {sorted(self.arch_settings)}, got {depth!r}')
        if pretrained is not None and not isinstance(pretrained, str):
            raise TypeError(f'pretrained must be a str or None, got {type(pretrained).__name__}')
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}')
        if not isinstance(num_stages, int) or not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be an int from 1 to 4, got {num_stages!r}')
        for name, value in (('out_indices', out_indices), ('strides', strides),
                            ('dilations', dilations)):
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f'{name} must be a sequence of ints, e.g. a tuple, got {value!r}')
        out_indices = tuple(out_indices)
        if not out_indices or not all(0 <= i < num_stages for i in out_indices):
            raise ValueError(f'out_indices must be stage indices in [0, {num_stages - 1}] '
                             f'(num_stages={num_stages}), got {out_indices}')
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise ValueError(f'strides and dilations must have num_stages={num_stages} entries, '
                             f'got strides={tuple(strides)}, dilations={tuple(dilations)}')
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                   for v in (*strides, *dilations)):
            raise ValueError(f'strides and dilations must be positive ints, '
                             f'got strides={tuple(strides)}, dilations={tuple(dilations)}')
        if style not in STYLES:
            raise ValueError(f'style must be one of {STYLES}, got {style!r}')
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be an int from -1 to num_stages={num_stages}, '
                             f'got {frozen_stages!r}')
        self.depth = depth
        self.in_channels = in_channels
        self.pretrained = pretrained
        self.torchvision_pretrain = torchvision_pretrain
        self.num_stages = num_stages
        self.out_indices = out_indices
        self.strides = tuple(strides)
        self.dilations = tuple(dilations)
        self.style = style
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg_or_default(conv_cfg)
        self.norm_cfg = norm_cfg_or_default(norm_cfg)
        self.act_cfg = act_cfg_or_default(act_cfg, 'ReLU')
        self.norm_eval = norm_eval
        self.partial_bn = partial_bn
        self.with_cp = with_cp

        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]
        self.inplanes = STEM_CHANNELS
        self._make_stem_layer()
        self.res_layers: list[str] = []
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = STEM_CHANNELS * 2**i
            res_layer = make_res_layer(self.block, self.inplanes, planes, num_blocks,
                                       stride=self.strides[i], dilation=self.dilations[i],
                                       style=style, conv_cfg=self.conv_cfg,
                                       norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                                       with_cp=with_cp)
            self.inplanes = planes * self.block.expansion
            self.add_module(f'layer{i + 1}', res_layer)
            self.res_layers.append(f'layer{i + 1}')
        self.feat_dim = self.block.expansion * STEM_CHANNELS * 2**(len(self.stage_blocks) - 1)

    def _make_stem_layer(self) -> None:
        """The stem: 7x7 conv, BN, ReLU (``conv1``) and a 3x3 max pool (``maxpool``)."""
        self.conv1 = ConvModule(self.in_channels, STEM_CHANNELS, kernel_size=7, stride=2, padding=3,
                                bias=False, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                act_cfg=self.act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def plain_2d_modules(self) -> set[str]:
        """Names of the ConvModules (conv + norm) that the plain 2D ResNet of this model's
        depth, stages and strides has, read off the architecture table (:mod:`tsmnet.archs`):
        ``conv1``, ``layerI.J.conv1`` ... and ``layerI.0.downsample``."""
        convs = ('conv1', 'conv2') if issubclass(self.block, BasicBlock) else \
            ('conv1', 'conv2', 'conv3')
        names = {'conv1'}
        inplanes = STEM_CHANNELS
        for i, blocks in enumerate(self.stage_blocks):
            planes = STEM_CHANNELS * 2**i
            names.update(f'layer{i + 1}.{j}.{c}' for j in range(blocks) for c in convs)
            if downsamples(self.block.expansion, inplanes, planes, self.strides[i]):
                names.add(f'layer{i + 1}.0.downsample')
            inplanes = planes * self.block.expansion
        return names

    def plain_2d_keys(self) -> set[str]:
        """State-dict keys (wrapper segments removed) of this model that the plain 2D ResNet
        also has: the keys a 2D (ImageNet) checkpoint can fill; subclasses' extra modules
        (non-local blocks) are not among them."""
        return unwrapped_keys(self, self.plain_2d_modules())

    def init_weights(self) -> None:
        """Load ``pretrained`` (converted from torchvision if ``torchvision_pretrain``), or
        initialise from ``init_cfg`` when there is no checkpoint."""
        if self.pretrained is None:
            with init_info_at_debug():  # MMEngine's per-parameter report: DEBUG, not INFO
                super().init_weights()
            return
        load_pretrained(self, self.pretrained, torchvision=self.torchvision_pretrain)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Args: x: ``[B, in_channels, H, W]``.

        Returns: The output of each stage in ``out_indices``; one tensor when there is one.
        """
        x = self.maxpool(self.conv1(x))
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _frozen_modules(self) -> list[nn.Module]:
        return ([self.conv1] if self.frozen_stages >= 0 else []) + \
            [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]

    def _partial_bn(self) -> None:
        print_log('Freezing BatchNorm2D except the first one.', logger='current',
                  level=logging.DEBUG)
        bns = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns[1:]:
            m.eval()
            m.weight.requires_grad = False
            m.bias.requires_grad = False

    def train(self, mode: bool = True) -> ResNet:
        """Set train/eval mode, keeping frozen stages and ``norm_eval``/``partial_bn`` BNs in
        eval. Returns ``self``, like every ``nn.Module``."""
        super().train(mode)
        if mode and self.partial_bn:
            self._partial_bn()
        return self
