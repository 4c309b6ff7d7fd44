"""Pure key mappings from other MobileNetV2 checkpoint layouts to tsmnet / MMAction2 keys.

Every function maps a state dict to a new state dict and touches no file and no model. Keys
are matched with anchored regexes; a key that matches no rule is kept unchanged, so that the
strict load after it names the key instead of dropping it.

Layouts (at ``widen_factor=1.0`` the stages hold 1, 2, 3, 4, 3, 3, 1 blocks, 17 in all):

* ``'torchvision'``: ``torchvision.models.mobilenet_v2`` (``features.0.{0,1}`` stem conv and
  BN, ``features.{1..17}`` inverted residuals whose ``conv`` holds ``{i}.0``/``{i}.1``
  conv-BN pairs then a plain conv and a BN, ``features.18.{0,1}`` the last 1x1 conv,
  ``classifier.1`` the ImageNet classifier).
* ``'mmpretrain'``: MMPretrain's (MMClassification's) ``MobileNetV2``, the checkpoint behind
  ``mmcls://mobilenet_v2``: MMAction2's backbone keys under ``backbone.``, and ``head.fc``.
* ``'tsm-online'``: the original TSM online demo (mit-han-lab/temporal-shift-module,
  ``online_demo/mobilenet_v2_tsm.py``): ``features.0.{0,1}``, blocks whose ``conv`` is one
  ``nn.Sequential`` of conv, BN, ReLU6 (``conv.0``/``conv.1``, ``conv.3``/``conv.4``,
  ``conv.6``/``conv.7``), ``features.18.{0,1}`` and ``classifier`` (a ``Linear``). Its 10
  shifted blocks are the same as MMAction2's, shifting one fold of ``C // 8`` channels from
  the past (tsmnet's ``shift_mode='causal'``).
* ``'mmaction'``: MMAction2 recognizer keys (``backbone.``, ``cls_head.``), tsmnet's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

StateDict = dict[str, torch.Tensor]

#: Blocks per stage of MobileNetV2 (``layer1`` ... ``layer7``).
STAGE_BLOCKS: tuple[int, ...] = (1, 2, 3, 4, 3, 3, 1)
#: ``features.{i}`` of torchvision and the TSM online demo -> (stage, block), ``i`` from 1.
FEATURE_BLOCKS: tuple[tuple[int, int], ...] = tuple(
    (stage + 1, block) for stage, blocks in enumerate(STAGE_BLOCKS) for block in range(blocks))
LAST_FEATURE = len(FEATURE_BLOCKS) + 1  # features.18: the 1x1 conv to 1280 channels

BN_PARAMS = r'(?:weight|bias|running_mean|running_var|num_batches_tracked)'
_FEATURE = re.compile(r'^features\.(?P<index>\d+)\.(?P<rest>.+)$')
# torchvision: a conv-BN pair (Conv2dNormActivation) is `{i}.0`/`{i}.1`; the projection is a
# plain conv `{i}` followed by a BN `{i + 1}`
_TV_PAIR = re.compile(rf'^conv\.(?P<i>\d+)\.(?P<which>[01])\.(?P<param>weight|bias|{BN_PARAMS})$')
_TV_PLAIN = re.compile(rf'^conv\.(?P<i>\d+)\.(?P<param>weight|bias|{BN_PARAMS})$')
_STEM_OR_LAST = re.compile(rf'^(?P<which>[01])\.(?P<param>weight|bias|{BN_PARAMS})$')
_ONLINE = re.compile(rf'^conv\.(?P<i>\d+)\.(?P<param>weight|bias|{BN_PARAMS})$')
_MODULE_PREFIX = re.compile(r'^module\.')


def strip_data_parallel(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Remove the ``module.`` prefix that ``DataParallel``/``DDP`` give every key."""
    return {_MODULE_PREFIX.sub('', k): v for k, v in state_dict.items()}


def fill_num_batches_tracked(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Add ``num_batches_tracked = 0`` beside every BN ``running_mean`` that lacks it (older
    files predate that buffer; PyTorch's BN fills it the same way)."""
    out = dict(state_dict)
    for key in state_dict:
        if key.endswith('.running_mean'):
            out.setdefault(key[:-len('running_mean')] + 'num_batches_tracked',
                           torch.tensor(0, dtype=torch.long))
    return out


def _convmodule(which: str, param: str) -> str:
    return f"{'conv' if which == '0' else 'bn'}.{param}"


def _stage_key(index: int, rest: str) -> str | None:
    """``features.{index}`` with the inner key already mapped -> tsmnet key."""
    if index == 0:
        return f'conv1.{rest}'
    if index == LAST_FEATURE:
        return f'conv2.{rest}'
    if 1 <= index <= len(FEATURE_BLOCKS):
        stage, block = FEATURE_BLOCKS[index - 1]
        return f'layer{stage}.{block}.conv.{rest}'
    return None


def _torchvision_block(index: int, rest: str, expands: bool) -> str | None:
    """One key of ``features.{index}`` (an inverted residual) -> tsmnet key."""
    pair = _TV_PAIR.match(rest)
    if pair is not None:
        return _stage_key(index, f"{pair['i']}.{_convmodule(pair['which'], pair['param'])}")
    plain = _TV_PLAIN.match(rest)
    if plain is None:
        return None
    projection = 2 if expands else 1  # the index of the projection conv in torchvision
    i, param = int(plain['i']), plain['param']
    if i == projection:
        return _stage_key(index, f'{projection}.conv.{param}')
    if i == projection + 1:
        return _stage_key(index, f'{projection}.bn.{param}')
    return None


def _feature_key(key: str, block_key: Callable[[int, str], str | None]) -> str | None:
    """The tsmnet key of a ``features.N.…`` key (None where no rule applies): the stem and the
    last conv are alike in every layout; the blocks are mapped by ``block_key(index, rest)``."""
    found = _FEATURE.match(key)
    if found is None:
        return None
    index, rest = int(found['index']), found['rest']
    if index in (0, LAST_FEATURE):
        m = _STEM_OR_LAST.match(rest)
        return None if m is None else _stage_key(index, _convmodule(m['which'], m['param']))
    return block_key(index, rest)


def _online_block(index: int, rest: str) -> str | None:
    """The tsmnet key of a block key of the TSM online demo (``conv.{0,1,3,4,6,7}``: three
    conv-BN pairs, ReLU6 at 2 and 5 with no key)."""
    m = _ONLINE.match(rest)
    if m is None or int(m['i']) % 3 == 2:
        return None
    module, which = divmod(int(m['i']), 3)
    return _stage_key(index, f"{module}.{_convmodule(str(which), m['param'])}")


def torchvision_to_mobilenet_v2(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename torchvision MobileNetV2 keys to tsmnet/MMAction2 ``MobileNetV2`` keys.

    The ImageNet classifier (``classifier.*``) is dropped and missing ``num_batches_tracked``
    buffers are filled; a ``module.`` prefix is removed; a key that matches no rule is kept.

    Args:
        state_dict: ``features.0.0.weight``, ``features.2.conv.1.0.weight``... keys.

    Returns:
        ``conv1.conv.weight``, ``layer2.0.conv.1.conv.weight``... keys.
    """
    state_dict = fill_num_batches_tracked(strip_data_parallel(state_dict))
    # a block expands (three ConvModules) when its `conv.1` is a conv-BN pair
    expands = {int(m['index']) for k in state_dict
               if (m := _FEATURE.match(k)) and m['rest'].startswith('conv.1.0.')}
    out: StateDict = {}
    for key, value in state_dict.items():
        if key.startswith('classifier.'):
            continue
        mapped = _feature_key(
            key, lambda index, rest: _torchvision_block(index, rest, index in expands))
        out[mapped or key] = value
    return out


def tsm_online_to_mmaction(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename the original TSM online demo's MobileNetV2 keys to MMAction2 recognizer keys.

    ``features.*`` become ``backbone.<tsmnet key>`` (the shifted blocks take the ``.net``
    segment of the shift sites of :class:`tsmnet.MobileNetV2TSM`: ``conv.0.net``), and
    ``classifier`` becomes ``cls_head.fc_cls``.

    Args:
        state_dict: ``features.2.conv.0.weight``, ``classifier.weight``... keys (an optional
            ``module.`` prefix is removed).

    Returns:
        ``backbone.layer2.0.conv.0.conv.weight``, ``cls_head.fc_cls.weight``... keys.
    """
    state_dict = fill_num_batches_tracked(strip_data_parallel(state_dict))
    # conv.{0,1} conv-BN, conv.{3,4} conv-BN, conv.{6,7} conv-BN (ReLU6 at 2 and 5 has no key)
    expands = {int(m['index']) for k in state_dict
               if (m := _FEATURE.match(k)) and m['rest'].startswith('conv.6.')}
    out: StateDict = {}
    for key, value in state_dict.items():
        classifier = re.match(r'^classifier\.(weight|bias)$', key)
        if classifier is not None:
            out[f'cls_head.fc_cls.{classifier.group(1)}'] = value
            continue
        mapped = _feature_key(key, _online_block)
        out[f'backbone.{mapped}' if mapped else key] = value
    return wrap_shift_sites(out, expands)


def wrap_shift_sites(recognizer: Mapping[str, torch.Tensor], expands: set[int]) -> StateDict:
    """Give the keys of ``conv.0`` of every shift site (a block that expands and keeps its
    shape: stride 1 and not the first of its stage) the ``.net`` segment of the shift."""
    sites = {f'layer{stage}.{block}' for index, (stage, block) in enumerate(FEATURE_BLOCKS, 1)
             if index in expands and block > 0}
    out: StateDict = {}
    for key, value in recognizer.items():
        m = re.match(r'^backbone\.(?P<block>layer\d+\.\d+)\.conv\.0\.(?P<rest>.+)$', key)
        if m is not None and m['block'] in sites:
            key = f"backbone.{m['block']}.conv.0.net.{m['rest']}"
        out[key] = value
    return out


def mmpretrain_to_mobilenet_v2(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """MMPretrain MobileNetV2 keys -> tsmnet ``MobileNetV2`` keys: the ``backbone.`` prefix
    removed and the ImageNet head (``head.*``) dropped, as MMEngine's ``mmcls://`` loader
    does; other keys are kept for the strict load to report."""
    out: StateDict = {}
    for key, value in strip_data_parallel(state_dict).items():
        if key.startswith('head.'):
            continue
        out[key[len('backbone.'):] if key.startswith('backbone.') else key] = value
    return out


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """The MobileNetV2 layout of a state dict, or None if it is not a MobileNetV2.

    Returns:
        ``'torchvision'``, ``'tsm-online'``, ``'mmpretrain'`` (``backbone.`` keys with an
        ``head.`` classifier, or none), ``'mmaction'`` (a recognizer: ``backbone.`` with
        ``cls_head.``), ``'tsmnet'`` (bare backbone keys) or None.
    """
    keys = {_MODULE_PREFIX.sub('', k) for k in state_dict}
    if 'features.0.0.weight' in keys:
        if 'features.1.conv.0.0.weight' in keys:
            return 'torchvision'
        if 'features.1.conv.0.weight' in keys:
            return 'tsm-online'
        return None
    if 'backbone.layer1.0.conv.0.conv.weight' in keys:
        return 'mmaction' if any(k.startswith('cls_head.') for k in keys) else 'mmpretrain'
    if 'layer1.0.conv.0.conv.weight' in keys:
        return 'tsmnet'
    return None


def stage_channels(backbone: Mapping[str, torch.Tensor]) -> tuple[int, ...] | None:
    """Output channels of ``conv1``, ``layer1`` ... ``layer7`` and ``conv2`` read off
    tsmnet/MMAction2 backbone keys (None where a key is missing)."""
    def out_of(prefix: str) -> int | None:
        for key in (f'{prefix}.conv.weight', f'{prefix}.net.conv.weight'):
            if key in backbone:
                return int(backbone[key].shape[0])
        return None

    channels = [out_of('conv1')]
    for stage, blocks in enumerate(STAGE_BLOCKS, 1):
        last = 'conv.2' if f'layer{stage}.0.conv.2.conv.weight' in backbone else 'conv.1'
        channels.append(out_of(f'layer{stage}.{blocks - 1}.{last}'))
    channels.append(out_of('conv2'))
    if None in channels:
        return None
    return tuple(c for c in channels if c is not None)


def is_shifted(backbone: Mapping[str, torch.Tensor]) -> bool:
    """Whether backbone keys hold shift sites (``layerX.Y.conv.0.net.``)."""
    return any(re.match(r'^layer\d+\.\d+\.conv\.0\.net\.', k) for k in backbone)
