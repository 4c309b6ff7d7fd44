"""Pure key mappings from other checkpoint layouts to tsmnet / MMAction2 keys.

Every function here maps a state dict to a new state dict and touches no file and no model,
so each one is tested alone. Keys are matched with anchored regexes; a key that matches no
rule is kept unchanged, so that the strict load after it names the key instead of dropping it.

Layouts:

* ``'torchvision'``: ``torchvision.models.resnet{18..152}`` (``conv1.weight``, ``bn1.*``,
  ``layer1.0.conv1.weight``, ``layer1.0.downsample.{0,1}.*``, ``fc.*``).
* ``'timm'``: timm's plain ResNets (``resnet18`` ... ``resnet152``), ``.pth`` or
  ``.safetensors``: torchvision's names. Variants of another architecture (deep stem
  ``resnet50d``, average-pool shortcut, squeeze-excitation) are refused by name.
* ``'tsm'``: the original TSM release (https://github.com/mit-han-lab/temporal-shift-module),
  a ``DataParallel`` TSN: ``module.base_model.<torchvision key with wrappers>`` where a shift
  wraps ``conv1`` (``layer1.0.conv1.net.weight``, 'blockres') or the block
  (``layer1.0.net.conv1.weight``, 'block'), a non-local wrapper holds ``block`` and
  ``nl.{g.0,theta,phi.0,W.0,W.1}``, a temporal pool wraps ``layer2`` (``layer2.net.0...``)
  and ``module.new_fc`` is the classifier.
* ``'mmaction'``: MMAction2 recognizer keys (``backbone.``, ``cls_head.``), which are
  tsmnet's own (``layer1.0.conv1.conv.net.weight``...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch

from ...archs import depth_of
from .common import (
    MODULE_PREFIX,
    StateDict,
    fill_num_batches_tracked,
    strip_data_parallel,
)

SourceFormat = Literal['torchvision', 'timm', 'tsm', 'mmaction']
SOURCE_FORMATS: tuple[str, ...] = ('torchvision', 'timm', 'tsm', 'mmaction')

BACKBONE_PREFIX = 'backbone.'
HEAD_PREFIX = 'cls_head.'
CONV1_KEY = 'conv1.conv.weight'  # the stem conv of tsmnet/MMAction2 ResNet


def _rules(*pairs: tuple[str, str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(pattern), repl) for pattern, repl in pairs)


def _apply(rules: tuple[tuple[re.Pattern[str], str], ...], key: str) -> str | None:
    for pattern, repl in rules:
        if pattern.match(key):
            return pattern.sub(repl, key)
    return None


# torchvision names -> MMAction2 ResNet names (every conv is a ConvModule: .conv and .bn)
_TORCHVISION_RULES = _rules(
    (r'^conv1\.(weight|bias)$', r'conv1.conv.\1'),
    (r'^bn1\.(\w+)$', r'conv1.bn.\1'),
    (r'^(layer\d+\.\d+)\.conv(\d)\.(weight|bias)$', r'\1.conv\2.conv.\3'),
    (r'^(layer\d+\.\d+)\.bn(\d)\.(\w+)$', r'\1.conv\2.bn.\3'),
    (r'^(layer\d+\.\d+)\.downsample\.0\.(weight|bias)$', r'\1.downsample.conv.\2'),
    (r'^(layer\d+\.\d+)\.downsample\.1\.(\w+)$', r'\1.downsample.bn.\2'),
)
_CLASSIFIER = re.compile(r'^fc\.(weight|bias)$')


def torchvision_to_resnet(state_dict: Mapping[str, torch.Tensor], *,
                          fill_tracked: bool = True) -> StateDict:
    """Rename torchvision ResNet keys to tsmnet/MMAction2 plain ``ResNet`` keys.

    The ImageNet classifier (``fc.*``) is dropped and missing ``num_batches_tracked``
    buffers are filled (see :func:`fill_num_batches_tracked`); a key that matches no rule is
    kept unchanged, so that the strict load reports it.

    Args:
        state_dict: torchvision keys (``conv1.weight``, ``layer1.0.bn1.bias``...).
        fill_tracked: Fill missing ``num_batches_tracked``. Defaults to True; loaders pass
            False and fill the converted keys themselves, to report what they filled.

    Returns:
        ResNet keys (``conv1.conv.weight``, ``layer1.0.conv1.bn.bias``...).
    """
    out: StateDict = {}
    if fill_tracked:
        state_dict = fill_num_batches_tracked(state_dict)
    for key, value in state_dict.items():
        if _CLASSIFIER.match(key):
            continue
        out[_apply(_TORCHVISION_RULES, key) or key] = value
    return out


# timm ResNet variants whose structure is not MMAction2's ResNet: refused by name
_TIMM_OTHER_ARCH: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'^conv1\.\d+\.'), "a deep stem ('resnet*d'/'resnet*c' variants)"),
    (re.compile(r'^layer\d+\.\d+\.downsample\.2\.'), "an average-pool shortcut ('resnet*d')"),
    (re.compile(r'^layer\d+\.\d+\.se\.'), "squeeze-excitation ('seresnet*')"),
    (re.compile(r'^layer\d+\.\d+\.conv2\.(?:conv|bn)\d*\.|^layer\d+\.\d+\.aa\.'),
     'split attention or anti-aliasing (ResNeSt, ResNet-AA)'),
)


def timm_to_resnet(state_dict: Mapping[str, torch.Tensor], *,
                   fill_tracked: bool = True) -> StateDict:
    """Rename timm ResNet keys (``.pth`` or ``.safetensors``) to plain ``ResNet`` keys.

    timm's plain ResNets (``resnet18`` ... ``resnet152``, any pretrained tag) use
    torchvision's names; a ``module.`` prefix (a timm training checkpoint) is removed.
    ``fill_tracked`` as for :func:`torchvision_to_resnet`.

    Raises:
        ValueError: The weights are of a timm variant with another structure (deep stem,
            average-pool shortcut, squeeze-excitation, ...), which no key mapping can fit.
    """
    state_dict = strip_data_parallel(state_dict)
    for pattern, what in _TIMM_OTHER_ARCH:
        hits = [k for k in state_dict if pattern.match(k)]
        if hits:
            raise ValueError(f'these timm weights have {what} (e.g. {hits[0]!r}): not the '
                             f'plain ResNet architecture of tsmnet/MMAction2')
    return torchvision_to_resnet(state_dict, fill_tracked=fill_tracked)


def _tsm_block_key(key: str) -> str | None:
    """One backbone key of the original TSM release -> tsmnet key (None: no rule matched)."""
    stem = _apply(_TORCHVISION_RULES[:2], key)
    if stem is not None:
        return stem
    nl = _TSM_NONLOCAL.match(key)
    if nl is not None:
        inner = _apply(_TSM_NONLOCAL_RULES, nl.group('rest'))
        return None if inner is None else f"{nl.group('head')}.non_local_block.{inner}"
    block = _TSM_BLOCK.match(key)
    if block is None:
        return None
    leaf, shift, param = block.group('leaf'), block.group('shift') or '', block.group('param')
    if leaf.startswith('conv'):
        mapped = f'{leaf}.conv{shift}'  # MMAction2 shifts the conv inside the ConvModule
    elif shift:
        return None  # only convs are shifted
    elif leaf.startswith('bn'):
        mapped = f'conv{leaf[2:]}.bn'
    else:
        mapped = 'downsample.conv' if leaf.endswith('0') else 'downsample.bn'
    return f"{block.group('head')}.{mapped}.{param}"


# layer2.0 | layer2.net.0 (temporal pool), then wrappers in their order: .net (a 'block'
# shift) and .block (a non-local wrapper), then the torchvision leaf, shifted with .net
_TSM_BLOCK = re.compile(r'^(?P<head>layer\d+(?:\.net)?\.\d+(?:\.(?:net|block))*)\.'
                        r'(?P<leaf>conv\d|bn\d|downsample\.[01])(?P<shift>\.net)?\.'
                        r'(?P<param>weight|bias|running_mean|running_var|num_batches_tracked)$')
_TSM_NONLOCAL = re.compile(r'^(?P<head>layer\d+(?:\.net)?\.\d+)\.nl\.(?P<rest>.+)$')
# original NONLocalBlock3D -> mmcv NonLocal3d (W.0.bias is folded into the BN, see below)
_TSM_NONLOCAL_RULES = _rules(
    (r'^(g|phi)\.0\.(weight|bias)$', r'\1.0.conv.\2'),  # sub_sample=True: conv, max pool
    (r'^(g|phi|theta)\.(weight|bias)$', r'\1.conv.\2'),
    (r'^W\.0\.weight$', r'conv_out.conv.weight'),
    (r'^W\.0\.bias$', r'conv_out.conv.bias'),
    (r'^W\.1\.(\w+)$', r'conv_out.bn.\1'),
    (r'^W\.(weight|bias)$', r'conv_out.conv.\1'),  # bn_layer=False
)
_TSM_CLASSIFIER = _rules(
    (r'^new_fc\.(weight|bias)$', HEAD_PREFIX + r'fc_cls.\1'),
    (r'^base_model\.fc\.(weight|bias)$', HEAD_PREFIX + r'fc_cls.\1'),  # TSN with dropout=0
)


def fold_conv_bias_into_bn(state_dict: Mapping[str, torch.Tensor], conv: str,
                           bn: str) -> StateDict:
    """Move the bias of a conv followed by BN into the BN, for a conv built without bias.

    ``BN(conv(x) + b)`` equals ``BN'(conv(x))`` with ``running_mean' = running_mean - b``
    in eval mode, and exactly equals ``BN(conv(x))`` in train mode (the batch mean absorbs
    ``b``). The original TSM's non-local output conv ``W.0`` has a bias; mmcv's
    ``conv_out`` (a conv with BN) has none.

    Args:
        state_dict: Keys ``{conv}.bias`` and ``{bn}.running_mean``.
        conv: Key prefix of the conv.
        bn: Key prefix of the BN.
    """
    out = dict(state_dict)
    bias, mean = f'{conv}.bias', f'{bn}.running_mean'
    if bias in out and mean in out:
        out[mean] = out[mean] - out.pop(bias)
    return out


def tsm_to_mmaction(state_dict: Mapping[str, torch.Tensor], *,
                    fill_tracked: bool = True) -> StateDict:
    """Rename an original TSM release checkpoint to MMAction2 recognizer keys.

    ``module.base_model.X`` becomes ``backbone.<tsmnet key of X>``; ``module.new_fc`` (or
    ``base_model.fc`` when TSN was built without dropout) becomes ``cls_head.fc_cls``; the
    non-local output conv's bias is folded into its BN (:func:`fold_conv_bias_into_bn`).
    Behaviour matches with MMAction2's TSM non-local config (``mode='embedded_gaussian'``,
    ``use_scale=False``, ``sub_sample=True``, ``norm_cfg=dict(type='BN3d')``).

    Args:
        state_dict: ``{'module.base_model.layer1.0.conv1.net.weight': ...,
            'module.new_fc.weight': ...}`` (the ``module.`` prefix is optional).
        fill_tracked: Fill missing ``num_batches_tracked`` (files of PyTorch < 0.4.1).
            Defaults to True.

    Returns:
        ``{'backbone.layer1.0.conv1.conv.net.weight': ..., 'cls_head.fc_cls.weight': ...}``.
    """
    out: StateDict = {}
    for key, value in strip_data_parallel(state_dict).items():
        head = _apply(_TSM_CLASSIFIER, key)
        if head is not None:
            out[head] = value
        elif key.startswith('base_model.'):
            inner = key[len('base_model.'):]
            out[BACKBONE_PREFIX + (_tsm_block_key(inner) or inner)] = value
        else:
            out[key] = value  # unknown: left for the strict load to report
    for key in [k for k in out if k.endswith('.non_local_block.conv_out.conv.bias')]:
        module = key[:-len('.conv.bias')]
        if f'{module}.bn.running_mean' in out:
            out = fold_conv_bias_into_bn(out, f'{module}.conv', f'{module}.bn')
    return fill_num_batches_tracked(out) if fill_tracked else out


def mmaction_to_mmaction(state_dict: Mapping[str, torch.Tensor], *,
                         fill_tracked: bool = True) -> StateDict:
    """MMAction2 recognizer keys are tsmnet's: only a ``module.`` prefix is removed, and with
    ``fill_tracked`` (the default) missing ``num_batches_tracked`` buffers are filled."""
    out = strip_data_parallel(state_dict)
    return fill_num_batches_tracked(out) if fill_tracked else out


# each takes ``fill_tracked=`` too
CONVERTERS: dict[str, Callable[..., StateDict]] = {
    'torchvision': torchvision_to_resnet,
    'timm': timm_to_resnet,
    'tsm': tsm_to_mmaction,
    'mmaction': mmaction_to_mmaction,
}


def detect_format(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Guess the layout of a state dict.

    Returns:
        ``'tsm'`` (original release), ``'mmaction'`` (``backbone.``-prefixed recognizer),
        ``'tsmnet'`` (bare tsmnet/MMAction2 backbone keys), ``'torchvision'`` (also timm's
        plain ResNets) or ``'unknown'``.
    """
    keys = [MODULE_PREFIX.sub('', k) for k in state_dict]
    if any(k.startswith('base_model.') for k in keys):
        return 'tsm'
    if any(k.startswith(BACKBONE_PREFIX) for k in keys):
        return 'mmaction'
    if CONV1_KEY in keys:
        return 'tsmnet'
    if 'conv1.weight' in keys or any(k.startswith('conv1.0.') for k in keys):
        return 'torchvision'
    return 'unknown'


def split_recognizer(state_dict: Mapping[str, torch.Tensor]) -> tuple[StateDict, StateDict]:
    """Split recognizer keys into the backbone's own keys (prefix removed) and the rest."""
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in state_dict.items()
                if k.startswith(BACKBONE_PREFIX)}
    rest = {k: v for k, v in state_dict.items() if not k.startswith(BACKBONE_PREFIX)}
    return backbone, rest


def inflate_conv1_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Fit an RGB stem conv to ``in_channels`` inputs as TSN does for optical flow.

    The filters are averaged over their input channels and the average is repeated for each
    new channel (TSN, Wang et al., https://arxiv.org/abs/1608.00859, cross-modality
    initialisation).

    Args:
        weight: ``[C_out, C_in, kH, kW]``.
        in_channels: The new ``C_in``.

    Returns:
        ``[C_out, in_channels, kH, kW]``; every input channel holds
        ``weight.mean(dim=1)``.
    """
    if weight.dim() != 4:
        raise ValueError(f'weight must be a 4-D conv weight [C_out, C_in, kH, kW], '
                         f'got shape {tuple(weight.shape)}')
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f'in_channels must be a positive int, got {in_channels!r}')
    mean = weight.mean(dim=1, keepdim=True)
    return mean.expand(-1, in_channels, -1, -1).contiguous()


def inflate_in_channels(state_dict: Mapping[str, torch.Tensor], in_channels: int,
                        key: str = CONV1_KEY) -> StateDict:
    """Inflate ``state_dict[key]`` to ``in_channels`` input channels when they differ
    (:func:`inflate_conv1_weight`); otherwise return the state dict as it is."""
    out = dict(state_dict)
    weight = out.get(key)
    if weight is not None and weight.dim() == 4 and weight.shape[1] != in_channels:
        out[key] = inflate_conv1_weight(weight, in_channels)
    return out


_BLOCK_KEY = re.compile(r'^layer(?P<stage>\d+)(?:\.net)?\.(?P<idx>\d+)\.(?P<rest>.+)$')


def infer_arch(backbone: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Read a ResNetTSM configuration off tsmnet/MMAction2 backbone keys.

    Args:
        backbone: Backbone keys without prefix (``layer1.0.conv1.conv.net.weight``...).

    Returns:
        ``depth`` (None if the block counts match no depth), ``in_channels``, ``num_stages``,
        ``is_shift``, ``shift_place``, ``temporal_pool``, ``non_local`` (one tuple of 0/1 per
        stage) and ``non_local_sub_sample``.
    """
    blocks: dict[int, set[int]] = {}
    non_local: dict[tuple[int, int], bool] = {}
    bottleneck = False
    block_shift = res_shift = False
    for key in backbone:
        m = _BLOCK_KEY.match(key)
        if m is None:
            continue
        stage, idx, rest = int(m.group('stage')), int(m.group('idx')), m.group('rest')
        blocks.setdefault(stage, set()).add(idx)
        non_local[(stage, idx)] = non_local.get((stage, idx), False) or \
            rest.startswith('non_local_block.')
        bottleneck |= '.conv3.' in f'.{rest}'
        block_shift |= re.match(r'^(?:block\.)?net\.', rest) is not None
        res_shift |= re.search(r'(?:^|\.)conv1\.conv\.net\.', rest) is not None
    counts = tuple(max(blocks[s]) + 1 for s in sorted(blocks))
    depth = depth_of('bottleneck' if bottleneck else 'basic', counts)
    conv1 = backbone.get(CONV1_KEY)
    flags = tuple(tuple(int(non_local.get((s, i), False)) for i in range(n))
                  for s, n in zip(sorted(blocks), counts))
    return dict(depth=depth, in_channels=None if conv1 is None else int(conv1.shape[1]),
                num_stages=len(counts), is_shift=block_shift or res_shift,
                shift_place='block' if block_shift else 'blockres',
                temporal_pool=any(re.match(r'^layer\d+\.net\.\d+\.', k) for k in backbone),
                non_local=flags,
                non_local_sub_sample=any('.non_local_block.g.0.' in k for k in backbone))
