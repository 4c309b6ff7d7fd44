"""The pure key mappings of ResNet checkpoint layouts (tsmnet.weights.keymap.resnet):
torchvision, timm, the original TSM release and MMAction2, key by key."""

from __future__ import annotations

import pytest
import torch
from state_dicts import NL_CFG, NL_R50
from torch import nn

from tsmnet import ResNetTSM
from tsmnet.weights.keymap import (
    detect_format,
    fill_num_batches_tracked,
    fold_conv_bias_into_bn,
    infer_arch,
    inflate_conv1_weight,
    timm_to_resnet,
    torchvision_to_resnet,
    tsm_to_mmaction,
)

# --- pure mappings ------------------------------------------------------------------------

def test_torchvision_mapping_by_name():
    t = torch.zeros(1)
    out = torchvision_to_resnet({'conv1.weight': t, 'bn1.running_var': t,
                                 'layer1.0.conv2.weight': t, 'layer1.0.bn3.bias': t,
                                 'layer2.0.downsample.0.weight': t,
                                 'layer2.0.downsample.1.running_mean': t, 'fc.weight': t,
                                 'fc.bias': t, 'stray.layer1.0.conv1.weight': t})
    assert set(out) == {
        'conv1.conv.weight', 'conv1.bn.running_var', 'layer1.0.conv2.conv.weight',
        'layer1.0.conv3.bn.bias', 'layer2.0.downsample.conv.weight',
        'layer2.0.downsample.bn.running_mean', 'stray.layer1.0.conv1.weight',
        # num_batches_tracked filled beside each running_mean
        'layer2.0.downsample.bn.num_batches_tracked'}
    assert out['layer2.0.downsample.bn.num_batches_tracked'].item() == 0


def test_timm_mapping_and_refused_variants():
    t = torch.zeros(1)
    assert timm_to_resnet({'module.conv1.weight': t, 'module.bn1.running_mean': t}).keys() == {
        'conv1.conv.weight', 'conv1.bn.running_mean', 'conv1.bn.num_batches_tracked'}
    with pytest.raises(ValueError, match='deep stem'):
        timm_to_resnet({'conv1.0.weight': t, 'conv1.1.weight': t})
    with pytest.raises(ValueError, match='average-pool shortcut'):
        timm_to_resnet({'conv1.weight': t, 'layer2.0.downsample.2.weight': t})
    with pytest.raises(ValueError, match='squeeze-excitation'):
        timm_to_resnet({'conv1.weight': t, 'layer1.0.se.fc1.weight': t})


def test_tsm_mapping_by_name():
    t = torch.zeros(2)
    out = tsm_to_mmaction({
        'module.base_model.conv1.weight': t,
        'module.base_model.layer1.0.conv1.net.weight': t,      # blockres shift
        'module.base_model.layer1.0.bn1.weight': t,
        'module.base_model.layer1.1.net.conv2.weight': t,      # block shift
        'module.base_model.layer1.1.net.downsample.1.bias': t,
        'module.base_model.layer2.0.block.conv1.net.weight': t,  # non-local wrapper
        'module.base_model.layer2.0.nl.g.0.weight': t,
        'module.base_model.layer2.0.nl.theta.bias': t,
        'module.base_model.layer2.0.nl.phi.0.weight': t,
        'module.base_model.layer2.0.nl.W.0.weight': t,
        'module.base_model.layer2.0.nl.W.1.running_var': t,
        'module.base_model.layer2.net.1.conv1.net.weight': t,  # temporal pool
        'module.new_fc.weight': t,
        'module.something_else': t,
    })
    assert list(out) == [
        'backbone.conv1.conv.weight', 'backbone.layer1.0.conv1.conv.net.weight',
        'backbone.layer1.0.conv1.bn.weight', 'backbone.layer1.1.net.conv2.conv.weight',
        'backbone.layer1.1.net.downsample.bn.bias', 'backbone.layer2.0.block.conv1.conv.net.weight',
        'backbone.layer2.0.non_local_block.g.0.conv.weight',
        'backbone.layer2.0.non_local_block.theta.conv.bias',
        'backbone.layer2.0.non_local_block.phi.0.conv.weight',
        'backbone.layer2.0.non_local_block.conv_out.conv.weight',
        'backbone.layer2.0.non_local_block.conv_out.bn.running_var',
        'backbone.layer2.net.1.conv1.conv.net.weight', 'cls_head.fc_cls.weight',
        'something_else']


def test_fold_conv_bias_into_bn_is_exact():
    """Conv(bias) + BN equals the bias-free conv + BN with the folded running mean."""
    conv_b = nn.Conv3d(8, 4, 1, bias=True)
    bn = nn.BatchNorm3d(4)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    sd = {f'conv.{k}': v for k, v in conv_b.state_dict().items()}
    sd.update({f'bn.{k}': v for k, v in bn.state_dict().items()})
    folded = fold_conv_bias_into_bn(sd, 'conv', 'bn')
    assert 'conv.bias' not in folded
    plain = nn.Sequential(nn.Conv3d(8, 4, 1, bias=False), nn.BatchNorm3d(4))
    plain.load_state_dict({k.replace('conv.', '0.').replace('bn.', '1.'): v
                           for k, v in folded.items()})
    x = torch.randn(2, 8, 3, 4, 4)
    for train in (False, True):
        ref = nn.Sequential(conv_b, bn).train(train)
        plain.train(train)
        with torch.no_grad():
            assert torch.allclose(ref(x), plain(x), atol=1e-5)


def test_inflate_conv1_weight():
    weight = torch.randn(64, 3, 7, 7)
    flow = inflate_conv1_weight(weight, 10)
    assert flow.shape == (64, 10, 7, 7) and flow.is_contiguous()
    assert torch.allclose(flow, weight.mean(dim=1, keepdim=True).expand(-1, 10, -1, -1))
    with pytest.raises(ValueError, match='in_channels must be a positive int, got 0'):
        inflate_conv1_weight(weight, 0)
    with pytest.raises(ValueError, match=r'4-D conv weight .* got shape \(64, 3\)'):
        inflate_conv1_weight(weight[:, :, 0, 0], 2)


@pytest.mark.parametrize('kwargs', [
    dict(depth=18, shift_place='blockres'),
    dict(depth=34, shift_place='block', temporal_pool=True),
    dict(depth=50, non_local=NL_R50, non_local_cfg=NL_CFG, temporal_pool=True),
    dict(depth=50, shift_place='block', non_local=NL_R50, non_local_cfg=NL_CFG),
    dict(depth=101, is_shift=False, in_channels=2),
    dict(depth=152, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)),
])
def test_infer_arch_reads_the_structure_back(kwargs):
    with torch.device('meta'):
        model = ResNetTSM(num_segments=4, **kwargs)
    arch = infer_arch(model.state_dict())
    assert arch['depth'] == kwargs['depth']
    assert arch['in_channels'] == kwargs.get('in_channels', 3)
    assert arch['is_shift'] == kwargs.get('is_shift', True)
    if arch['is_shift']:
        assert arch['shift_place'] == kwargs.get('shift_place', 'blockres')
    assert arch['temporal_pool'] == kwargs.get('temporal_pool', False)
    assert arch['num_stages'] == kwargs.get('num_stages', 4)
    assert arch['non_local'] == model.non_local_stages


def test_detect_format():
    t = torch.zeros(1)
    assert detect_format({'module.base_model.conv1.weight': t}) == 'tsm'
    assert detect_format({'backbone.conv1.conv.weight': t, 'cls_head.fc_cls.weight': t}) == \
        'mmaction'
    assert detect_format({'conv1.conv.weight': t}) == 'tsmnet'
    assert detect_format({'conv1.weight': t, 'bn1.weight': t}) == 'torchvision'
    assert detect_format({'blocks.0.attn.qkv.weight': t}) == 'unknown'


def test_fill_num_batches_tracked_reports_what_it_filled():
    t = torch.zeros(2)
    filled: list[str] = []
    out = fill_num_batches_tracked({'a.bn.running_mean': t, 'b.bn.running_mean': t,
                                    'b.bn.num_batches_tracked': torch.tensor(7)}, filled)
    assert filled == ['a.bn.num_batches_tracked']
    assert out['a.bn.num_batches_tracked'].item() == 0
    assert out['b.bn.num_batches_tracked'].item() == 7  # never overwritten
    for convert in (tsm_to_mmaction, torchvision_to_resnet):
        assert not any(k.endswith('num_batches_tracked') for k in
                       convert({'module.base_model.bn1.running_mean': t,
                                'bn1.running_mean': t}, fill_tracked=False))
