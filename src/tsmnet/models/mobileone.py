"""The 2D MobileOne that MobileOneTSM builds on, with MMPretrain 1.2.0's arguments and keys.

MobileOne: An Improved One millisecond Mobile Backbone, https://arxiv.org/abs/2206.04040.
Each block is trained as a sum of branches (``branch_conv_list``, ``branch_scale``,
``branch_norm``) and deployed as one conv (``branch_reparam``), the same function in eval
mode: :meth:`MobileOne.switch_to_deploy`, ``deploy=True``, or a whole checkpoint at once with
:func:`tsmnet.models.reparam.reparameterize_state_dict`. Module names and state-dict keys are
MMPretrain's in both forms, because its and MMAction2's checkpoints are keyed that way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from mmcv.cnn import ConvModule, build_activation_layer, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import nn

from .._torch_compat import BatchNormBase
from ..weights.checkpoint import (
    LoadReport,
    load_state_dict_checked,
    read_state_dict,
    rewrap_state_dict,
    wrap_names_of,
)
from .frames import check_frames_input
from .frozen_stages import FrozenStages
from .layer_cfgs import conv_cfg_or_default
from .mobilenet_v2 import make_divisible
from .reparam import is_training_form, reparameterize_block, reparameterize_state_dict

__all__ = ['ARCH_ZOO', 'MobileOne', 'MobileOneBlock', 'SELayer', 'reparameterize_state_dict']

#: MMPretrain's ``MobileOne.arch_zoo``: blocks, width factor, conv branches and SE blocks
#: (the last ones of a stage) per stage.
ARCH_ZOO: Mapping[str, Mapping[str, tuple[float, ...]]] = MappingProxyType({
    's0': MappingProxyType(dict(num_blocks=(2, 8, 10, 1), width_factor=(0.75, 1.0, 1.0, 2.0),
                                num_conv_branches=(4, 4, 4, 4), num_se_blocks=(0, 0, 0, 0))),
    's1': MappingProxyType(dict(num_blocks=(2, 8, 10, 1), width_factor=(1.5, 1.5, 2.0, 2.5),
                                num_conv_branches=(1, 1, 1, 1), num_se_blocks=(0, 0, 0, 0))),
    's2': MappingProxyType(dict(num_blocks=(2, 8, 10, 1), width_factor=(1.5, 2.0, 2.5, 4.0),
                                num_conv_branches=(1, 1, 1, 1), num_se_blocks=(0, 0, 0, 0))),
    's3': MappingProxyType(dict(num_blocks=(2, 8, 10, 1), width_factor=(2.0, 2.5, 3.0, 4.0),
                                num_conv_branches=(1, 1, 1, 1), num_se_blocks=(0, 0, 0, 0))),
    's4': MappingProxyType(dict(num_blocks=(2, 8, 10, 1), width_factor=(3.0, 3.5, 3.5, 4.0),
                                num_conv_branches=(1, 1, 1, 1), num_se_blocks=(0, 0, 5, 1))),
})
ARCH_KEYS = ('num_blocks', 'width_factor', 'num_conv_branches', 'num_se_blocks')
BASE_CHANNELS = (64, 128, 256, 512)
NUM_STAGES = 4  # stage1 ... stage4; stage0 is the stem
#: The default ``se_cfg`` (read-only: a default must not be shared mutable state).
DEFAULT_SE_CFG: Mapping[str, Any] = MappingProxyType({'ratio': 16})


class SELayer(BaseModule):
    """Squeeze-and-excitation (https://arxiv.org/abs/1709.01507) with MMPretrain's
    arguments and keys (``conv1.conv``, ``conv2.conv``): ``x * sigmoid(conv2(relu(conv1(
    avgpool(x)))))``.

    Args:
        channels: Input and output channels.
        squeeze_channels: Hidden channels. Defaults to None,
            ``make_divisible(channels // ratio, divisor)``.
        ratio: See ``squeeze_channels``. Defaults to 16.
        divisor: See ``squeeze_channels``. Defaults to 8.
        bias: The convs' bias (mmcv's ``'auto'``: yes, as there is no norm). Defaults to
            ``'auto'``.
        conv_cfg: mmcv conv config. Defaults to None, a plain conv.
        act_cfg: The two activations (one dict for both). Defaults to None, ReLU then Sigmoid.
        return_weight: Must be False: a MobileOne block needs the reweighted features.
        init_cfg: MMEngine init config. Defaults to None.
    """

    def __init__(self, channels: int, squeeze_channels: int | None = None, ratio: int = 16,
                 divisor: int = 8, bias: bool | str = 'auto',
                 conv_cfg: dict[str, Any] | None = None,
                 act_cfg: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
                 return_weight: bool = False,
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if return_weight:
            raise ValueError('se_cfg: return_weight must be False in a MobileOne block (it '
                             'multiplies its features by the SE weights)')
        if act_cfg is None:
            act_cfg = (dict(type='ReLU'), dict(type='Sigmoid'))
        elif isinstance(act_cfg, Mapping):
            act_cfg = (act_cfg, act_cfg)
        if len(act_cfg) != 2 or not all(isinstance(a, Mapping) for a in act_cfg):
            raise ValueError(f'se_cfg: act_cfg must be a dict or two dicts, got {act_cfg!r}')
        if squeeze_channels is None:
            squeeze_channels = make_divisible(channels // ratio, divisor)
        if isinstance(squeeze_channels, bool) or not isinstance(squeeze_channels, int) or \
                squeeze_channels < 1:
            raise ValueError(f'se_cfg: squeeze_channels must be a positive int, got '
                             f'{squeeze_channels!r}')
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = ConvModule(channels, squeeze_channels, kernel_size=1, bias=bias,
                                conv_cfg=conv_cfg, act_cfg=dict(act_cfg[0]))
        self.conv2 = ConvModule(squeeze_channels, channels, kernel_size=1, bias=bias,
                                conv_cfg=conv_cfg, act_cfg=dict(act_cfg[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[B, C, H, W]``. Returns: ``[B, C, H, W]``, each channel reweighted."""
        return x * self.conv2(self.conv1(self.global_avgpool(x)))


def _conv_bn(conv_cfg: dict[str, Any] | None, norm_cfg: dict[str, Any], in_channels: int,
             out_channels: int, kernel_size: int, stride: int, padding: int, dilation: int,
             groups: int) -> nn.Sequential:
    """A conv without bias then a norm, as ``conv`` and ``norm`` (MMPretrain's keys)."""
    branch = nn.Sequential()
    branch.add_module('conv', build_conv_layer(
        conv_cfg, in_channels, out_channels, kernel_size=kernel_size, stride=stride,
        padding=padding, dilation=dilation, groups=groups, bias=False))
    branch.add_module('norm', build_norm_layer(norm_cfg, out_channels)[1])
    return branch


class MobileOneBlock(BaseModule):
    """A reparameterisable block: the sum of its branches, then SE (optional) and activation.

    Training form: ``branch_conv_list`` (``num_convs`` ``k x k`` conv + BN), ``branch_scale``
    (a 1x1 conv + BN, when ``k > 1``) and ``branch_norm`` (a BN of the input, when input
    and output shapes agree). Deploy form: ``branch_reparam``, one ``k x k`` conv with bias.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: ``k``.
        num_convs: ``k x k`` conv branches.
        stride: Stride of the convs. Defaults to 1.
        padding: Padding of the ``k x k`` convs. Defaults to 1.
        dilation: Dilation of the ``k x k`` convs. Defaults to 1.
        groups: Groups of every conv. Defaults to 1.
        se_cfg: :class:`SELayer` arguments; None: no SE. Defaults to None.
        conv_cfg: mmcv conv config. Defaults to None, a plain conv.
        norm_cfg: mmcv norm config. Defaults to None, ``dict(type='BN')``.
        act_cfg: mmcv activation config. Defaults to None, ``dict(type='ReLU')``.
        deploy: Build the deploy form. Defaults to False.
        init_cfg: MMEngine init config. Defaults to None.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, num_convs: int,
                 stride: int = 1, padding: int = 1, dilation: int = 1, groups: int = 1,
                 se_cfg: Mapping[str, Any] | None = None,
                 conv_cfg: dict[str, Any] | None = None,
                 norm_cfg: dict[str, Any] | None = None, act_cfg: dict[str, Any] | None = None,
                 deploy: bool = False,
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if se_cfg is not None and not isinstance(se_cfg, Mapping):
            raise TypeError(f'se_cfg must be a dict or None, got {type(se_cfg).__name__}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.num_conv_branches = num_convs
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.se_cfg = se_cfg
        self.conv_cfg = conv_cfg_or_default(conv_cfg)  # plain nn.Conv2d (layer_cfgs)
        self.norm_cfg = dict(type='BN') if norm_cfg is None else dict(norm_cfg)
        self.act_cfg = dict(type='ReLU') if act_cfg is None else dict(act_cfg)
        self.deploy = deploy
        self.se = nn.Identity() if se_cfg is None else SELayer(out_channels, **se_cfg)
        if deploy:
            self.branch_reparam = self._reparam_conv()
        else:
            # the identity branch exists where the block keeps the shape
            self.branch_norm = (build_norm_layer(self.norm_cfg, in_channels)[1]
                                if in_channels == out_channels and stride == 1 else None)
            self.branch_scale = self._branch(1, 0, 1) if kernel_size > 1 else None
            self.branch_conv_list = nn.ModuleList(
                self._branch(kernel_size, padding, dilation) for _ in range(num_convs))
        self.act = build_activation_layer(self.act_cfg)

    def _branch(self, kernel_size: int, padding: int, dilation: int) -> nn.Sequential:
        return _conv_bn(self.conv_cfg, self.norm_cfg, self.in_channels, self.out_channels,
                        kernel_size, self.stride, padding, dilation, self.groups)

    def _reparam_conv(self) -> nn.Module:
        return build_conv_layer(self.conv_cfg, self.in_channels, self.out_channels,
                                kernel_size=self.kernel_size, stride=self.stride,
                                padding=self.padding, dilation=self.dilation,
                                groups=self.groups, bias=True)

    def branches(self) -> list[nn.Module]:
        """The training form's branches in the order they are summed (norm, scale, convs)."""
        found = [self.branch_norm, self.branch_scale, *self.branch_conv_list]
        return [b for b in found if b is not None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[B, in_channels, H, W]``. Returns: ``[B, out_channels, H / s, W / s]``."""
        if self.deploy:
            out = self.branch_reparam(x)
        else:
            out = None
            for branch in self.branches():
                y = branch(x)
                out = y if out is None else out + y
        return self.act(self.se(out))

    def reparameterize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight and bias of the one conv equal to the branches (BNs in eval mode).

        Raises:
            TypeError: A branch norm is not a BatchNorm (only BatchNorms fold into a conv).
        """
        norms = [b if b is self.branch_norm else b.norm for b in self.branches()]
        if not all(isinstance(m, BatchNormBase) for m in norms):
            raise TypeError(f'switch_to_deploy needs BatchNorm branch norms (norm_cfg type BN), '
                            f'got norm_cfg={self.norm_cfg!r}')
        params = {k: v for k, v in self.state_dict().items() if not k.startswith('se.')}
        with torch.no_grad():
            return reparameterize_block(params, eps=norms[0].eps)

    def switch_to_deploy(self) -> None:
        """Replace the branches by ``branch_reparam``, equal in eval mode. Idempotent."""
        if self.deploy:
            return
        weight, bias = self.reparameterize()
        conv = self._reparam_conv()
        first = self.branch_conv_list[0].conv.weight
        conv.to(device=first.device, dtype=first.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
        conv.train(self.training)
        self.branch_reparam = conv
        del self.branch_conv_list, self.branch_scale, self.branch_norm
        self.deploy = True


def _check_arch(arch: str | Mapping[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
    if isinstance(arch, str):
        if arch not in ARCH_ZOO:
            raise ValueError(f'arch must be one of {list(ARCH_ZOO)} or a dict, got {arch!r}')
        return {k: tuple(v) for k, v in ARCH_ZOO[arch].items()}
    if not isinstance(arch, Mapping):
        raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
    if set(arch) != set(ARCH_KEYS):
        raise ValueError(f'arch must have the keys {list(ARCH_KEYS)}, got {sorted(arch)}')
    for key, value in arch.items():
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 4:
            raise ValueError(f'arch[{key!r}] must be a list of 4 values (one per stage), '
                             f'got {value!r}')
    for blocks, se in zip(arch['num_blocks'], arch['num_se_blocks']):
        if se > blocks:
            raise ValueError(f'arch: num_se_blocks {tuple(arch["num_se_blocks"])} exceeds '
                             f'num_blocks {tuple(arch["num_blocks"])} in a stage')
    return {k: tuple(arch[k]) for k in ARCH_KEYS}


def _check_out_indices(out_indices: int | Sequence[int]) -> list[int]:
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        out_indices = [out_indices]
    if isinstance(out_indices, (str, bytes)) or not isinstance(out_indices, Sequence) or \
            not out_indices:
        raise TypeError(f'out_indices must be an int or a sequence of ints, got {out_indices!r}')
    checked = []
    for index in out_indices:
        if isinstance(index, bool) or not isinstance(index, int) or \
                not -NUM_STAGES <= index < NUM_STAGES:
            raise ValueError(f'out_indices must be stage indices in [0, {NUM_STAGES - 1}] '
                             f'(stage1..stage4; negative ones count from the end), got '
                             f'{tuple(out_indices)}')
        checked.append(index % NUM_STAGES)
    return checked


class MobileOne(FrozenStages, BaseModule):
    """MobileOne backbone, argument for argument and key for key MMPretrain 1.2.0's.

    ``stage0`` (a 3x3 stride-2 block) then ``stage1`` ... ``stage4``, each a sequence of
    pairs of blocks: a 3x3 depthwise one (stride 2 in a stage's first pair), then a 1x1 one.

    Args:
        arch: ``'s0'`` ... ``'s4'`` (:data:`ARCH_ZOO`), or a dict with ``num_blocks``,
            ``width_factor``, ``num_conv_branches`` and ``num_se_blocks``, four values each.
        in_channels: Channels of the input frames. Defaults to 3.
        out_indices: Stages whose outputs are returned, in 0..3 (negative from the end).
            Defaults to ``(3,)``.
        frozen_stages: Stages frozen (parameters fixed, BN in eval); -1 none, 0 ``stage0``
            only, up to 4. Defaults to -1.
        conv_cfg: mmcv conv config. Defaults to None, a plain conv.
        norm_cfg: mmcv norm config. Defaults to None, ``dict(type='BN')``.
        act_cfg: mmcv activation config. Defaults to None, ``dict(type='ReLU')``.
        se_cfg: :class:`SELayer` arguments of the SE blocks; None: no SE. Defaults to
            ``{'ratio': 16}``.
        deploy: Build the deploy form (one conv per block). Defaults to False.
        norm_eval: Keep BN layers in eval mode while training. Defaults to False.
        init_cfg: MMEngine init config; ``dict(type='Pretrained', checkpoint=..., prefix=...)``
            loads a checkpoint, strictly. Defaults to None, Kaiming for ``Conv2d`` and
            constant 1 for BN.
    """

    #: MMPretrain's attribute.
    arch_zoo = ARCH_ZOO
    #: MMPretrain's forward returns a tuple even for one stage; MobileOneTSM unpacks it.
    single_output_as_tensor = False

    def __init__(self, arch: str | Mapping[str, Sequence[float]] = 's0', in_channels: int = 3,
                 out_indices: int | Sequence[int] = (3,), frozen_stages: int = -1,
                 conv_cfg: dict[str, Any] | None = None, norm_cfg: dict[str, Any] | None = None,
                 act_cfg: dict[str, Any] | None = None,
                 se_cfg: Mapping[str, Any] | None = DEFAULT_SE_CFG, deploy: bool = False,
                 norm_eval: bool = False,
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer=['Conv2d']),
                        dict(type='Constant', val=1, layer=['_BatchNorm'])]
        super().__init__(init_cfg=init_cfg)
        self.arch = _check_arch(arch)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}')
        self.out_indices = _check_out_indices(out_indices)
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) or \
                not -1 <= frozen_stages <= NUM_STAGES:
            raise ValueError(f'frozen_stages must be an int from -1 to {NUM_STAGES}, '
                             f'got {frozen_stages!r}')
        if se_cfg is not None and not isinstance(se_cfg, Mapping):
            raise TypeError(f'se_cfg must be a dict or None, got {type(se_cfg).__name__}')
        self.in_channels = in_channels
        self.deploy = deploy
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.conv_cfg = conv_cfg_or_default(conv_cfg)  # plain nn.Conv2d (layer_cfgs)
        self.norm_cfg = dict(type='BN') if norm_cfg is None else dict(norm_cfg)
        self.act_cfg = dict(type='ReLU') if act_cfg is None else dict(act_cfg)
        self.se_cfg = None if se_cfg is None else dict(se_cfg)

        channels = min(64, int(BASE_CHANNELS[0] * self.arch['width_factor'][0]))
        self.stage0 = MobileOneBlock(in_channels, channels, kernel_size=3, num_convs=1,
                                     stride=2, **self._block_cfgs(None))
        self.in_planes = channels  # the running channel count while building, as MMPretrain
        self.stages: list[str] = []
        for i, num_blocks in enumerate(self.arch['num_blocks']):
            planes = int(BASE_CHANNELS[i] * self.arch['width_factor'][i])
            self.add_module(f'stage{i + 1}', self._make_stage(
                planes, num_blocks, self.arch['num_se_blocks'][i],
                self.arch['num_conv_branches'][i]))
            self.stages.append(f'stage{i + 1}')

    def _block_cfgs(self, se_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
        return dict(se_cfg=se_cfg, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg, deploy=self.deploy)

    def _make_stage(self, planes: int, num_blocks: int, num_se: int,
                    num_conv_branches: int) -> nn.Sequential:
        """``num_blocks`` pairs (depthwise 3x3, pointwise 1x1); the last ``num_se`` with SE."""
        blocks = []
        for i in range(num_blocks):
            se_cfg = self.se_cfg if i >= num_blocks - num_se else None
            blocks.append(MobileOneBlock(
                self.in_planes, self.in_planes, kernel_size=3, num_convs=num_conv_branches,
                stride=2 if i == 0 else 1, padding=1, groups=self.in_planes,
                **self._block_cfgs(se_cfg)))
            blocks.append(MobileOneBlock(
                self.in_planes, planes, kernel_size=1, num_convs=num_conv_branches,
                stride=1, padding=0, **self._block_cfgs(se_cfg)))
            self.in_planes = planes
        return nn.Sequential(*blocks)

    @property
    def feat_dim(self) -> int:
        """Channels of the last stage's output (the classifier's input)."""
        return int(BASE_CHANNELS[-1] * self.arch['width_factor'][-1])

    def blocks(self) -> list[MobileOneBlock]:
        """Every MobileOne block, ``stage0`` first."""
        return [m for m in self.modules() if isinstance(m, MobileOneBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Args: x: ``[B, in_channels, H, W]`` (``[N * T, ...]`` for MobileOneTSM).

        Returns: The outputs of the stages in ``out_indices`` (a tuple; MobileOneTSM gives a
        tensor when there is one).
        """
        check_frames_input(self, x, self.in_channels, getattr(self, 'num_segments', 1))
        return self.forward_stages(x)

    def forward_stages(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The network without the input checks (also run frame by frame by TSMStream)."""
        x = self.stage0(x)
        outs = []
        for i, name in enumerate(self.stages):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        if self.single_output_as_tensor and len(outs) == 1:
            return outs[0]
        return tuple(outs)

    def _frozen_modules(self) -> list[nn.Module]:
        return ([self.stage0] if self.frozen_stages >= 0 else []) + \
            [getattr(self, name) for name in self.stages[:max(self.frozen_stages, 0)]]

    def switch_to_deploy(self) -> MobileOne:
        """Fold every block's branches into one conv (the deploy form; equal in eval mode).
        Frozen stages stay frozen. Returns ``self``."""
        for block in self.blocks():
            block.switch_to_deploy()
        self.deploy = True
        self._freeze_stages()
        return self

    def fit_state_dict(self, state_dict: Mapping[str, torch.Tensor],
                       prefix: str = '') -> dict[str, torch.Tensor]:
        """``state_dict`` in this model's form: a training-form checkpoint is
        reparameterised (:func:`reparameterize_state_dict`) when the model is in deploy form;
        anything else comes back as it is.

        Args:
            state_dict: Keys of this backbone (under ``prefix``, e.g. ``'backbone.'``).
            prefix: Where this backbone's keys start. Defaults to ``''``.
        """
        if not self.deploy or not is_training_form(state_dict):
            return dict(state_dict)
        eps = self.norm_cfg.get('eps', 1e-5)
        mine = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
        other = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
        return {**reparameterize_state_dict(mine, eps), **other}

    def _pretrained_init(self) -> dict[str, Any] | None:
        cfg = self.init_cfg
        if isinstance(cfg, Mapping) and cfg.get('type') == 'Pretrained':
            return dict(cfg)
        return None

    def init_weights(self) -> None:
        """Load ``init_cfg``'s ``Pretrained`` checkpoint (its ``prefix`` keys, strictly;
        converted to the deploy form if the model is in it), or initialise from ``init_cfg``."""
        pretrained = self._pretrained_init()
        if pretrained is None:
            super().init_weights()
            return
        self.load_pretrained(pretrained['checkpoint'], pretrained.get('prefix'))

    def load_pretrained(self, checkpoint: str, prefix: str | None = None) -> LoadReport:
        """Load ``checkpoint`` strictly: the keys under ``prefix`` (e.g. ``'backbone'``),
        wrapper segments added or removed to fit, reparameterised for the deploy form.

        Raises:
            tsmnet.weights.checkpoint.CheckpointMismatchError: The file does not fit.
        """
        state_dict = read_state_dict(checkpoint)
        if prefix:
            dotted = prefix if prefix.endswith('.') else f'{prefix}.'
            state_dict = {k[len(dotted):]: v for k, v in state_dict.items()
                          if k.startswith(dotted)}
        state_dict = self.fit_state_dict(state_dict)
        fitted = rewrap_state_dict(state_dict, self.state_dict(), wrap_names_of(self))
        return load_state_dict_checked(self, fitted, strict=True, source=str(checkpoint))
