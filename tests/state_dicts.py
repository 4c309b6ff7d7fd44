"""Synthetic checkpoints in the exact layout of each source, for the key-mapping, conversion and
loading tests.

The original TSM release's layout (mit-han-lab/temporal-shift-module: a DataParallel TSN whose
base_model is a torchvision ResNet with wrappers) is written out by ``original_tsm_checkpoint``.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import OrderedDict
from pathlib import Path

import torch

REFERENCE = Path(__file__).parent / 'data' / 'torchvision_resnet_state_dict_shapes.json.gz'
NL_CFG = dict(sub_sample=True, use_scale=False, norm_cfg=dict(type='BN3d', requires_grad=True),
              mode='embedded_gaussian')
# the original release's non-local placement (ops/non_local.py): layer2 blocks 0 and 2,
# layer3 blocks 0, 2 and 4 of a ResNet-50
NL_R50 = ((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))


def torchvision_shapes() -> dict[str, dict[str, list[int]]]:
    """torchvision's real state-dict keys and shapes of resnet18..152 (``data/``)."""
    return json.loads(gzip.decompress(REFERENCE.read_bytes()))['models']


def random_state_dict(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if not shape:
            out[key] = torch.tensor(3)
        elif key.endswith('running_var'):
            out[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            out[key] = torch.randn(shape, generator=gen) * 0.05
    return out


def original_tsm_checkpoint(torchvision: dict[str, torch.Tensor], *, shift_place: str,
                            non_local: bool = False, temporal_pool: bool = False,
                            num_classes: int = 5, dropout: bool = True) -> dict:
    """The dict that the original release's main.py saves, for a TSN over ``torchvision``.

    Its TSN wraps torchvision's ResNet: ``make_temporal_shift`` wraps ``conv1`` of every
    (every other, for 23+ blocks in layer3) block in ``TemporalShift`` (``.net``) for
    'blockres', or the whole block for 'block'; ``make_non_local`` wraps layer2[0,2] and
    layer3[0,2,4] in ``NL3DWrapper`` (``.block`` + ``.nl``, a NONLocalBlock3D with
    sub-sampling and BN); ``make_temporal_pool`` wraps layer2 (``.net``); with dropout,
    ``base_model.fc`` is a Dropout and ``new_fc`` the classifier.
    """
    gen = torch.Generator().manual_seed(1)
    n_round = 2 if sum(1 for k in torchvision if re.match(r'^layer3\.\d+\.conv1\.weight$', k)) \
        >= 23 else 1
    base: dict[str, torch.Tensor] = {}
    for key, value in torchvision.items():
        if key.startswith('fc.'):
            continue
        m = re.match(r'^(layer(\d))\.(\d+)\.(.+)$', key)
        if m is None:
            base[key] = value
            continue
        stage, layer, idx, rest = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if shift_place == 'blockres' and idx % n_round == 0:
            rest = re.sub(r'^conv1\.', 'conv1.net.', rest)
        block = f'{idx}.net.{rest}' if shift_place == 'block' else f'{idx}.{rest}'
        if non_local and ((layer == 2 and idx in (0, 2)) or (layer == 3 and idx in (0, 2, 4))):
            block = f'{idx}.block.{block[len(str(idx)) + 1:]}'
        pool = '.net' if temporal_pool and layer == 2 else ''
        base[f'{stage}{pool}.{block}'] = value
    if non_local:
        for layer, idxs, channels in ((2, (0, 2), 512), (3, (0, 2, 4), 1024)):
            for idx in idxs:
                pool = '.net' if temporal_pool and layer == 2 else ''
                p, inter = f'layer{layer}{pool}.{idx}.nl.', channels // 2
                for name, shape in (('g.0', (inter, channels)), ('theta', (inter, channels)),
                                    ('phi.0', (inter, channels)), ('W.0', (channels, inter))):
                    base[f'{p}{name}.weight'] = torch.randn(*shape, 1, 1, 1, generator=gen) * .05
                    base[f'{p}{name}.bias'] = torch.randn(shape[0], generator=gen) * 0.05
                base[f'{p}W.1.weight'] = torch.rand(channels, generator=gen) + 0.5
                base[f'{p}W.1.bias'] = torch.randn(channels, generator=gen) * 0.1
                base[f'{p}W.1.running_mean'] = torch.randn(channels, generator=gen) * 0.1
                base[f'{p}W.1.running_var'] = torch.rand(channels, generator=gen) + 0.5
                base[f'{p}W.1.num_batches_tracked'] = torch.tensor(100)
    feat = torchvision['fc.weight'].shape[1]
    fc = {'weight': torch.randn(num_classes, feat, generator=gen) * 0.01,
          'bias': torch.randn(num_classes, generator=gen) * 0.01}
    state = OrderedDict((f'module.base_model.{k}', v) for k, v in base.items())
    for name, value in fc.items():
        state[f'module.new_fc.{name}' if dropout else f'module.base_model.fc.{name}'] = value
    return {'epoch': 25, 'arch': 'resnet50', 'state_dict': state,
            'optimizer': {'state': {}, 'param_groups': [{'lr': 0.01, 'params': [0, 1]}]},
            'best_prec1': 71.25}


