"""ResNetTSM: parity with MMAction2 1.2.0's own class, structure, and construction errors."""

from __future__ import annotations

import pickle

import pytest
import torch
from parity import assert_same_numbers, randomize, shapes, shipped_resnet_tsm_backbones

import tsmnet
from tsmnet import ResNetTSM, TemporalPool, TemporalShift

SHIPPED = shipped_resnet_tsm_backbones()

# Every option of the reference, each with the others at their defaults (depth 50 unless
# given). Inputs are 2 clips at 32x32 so that batch mixing would show.
OPTIONS = {
    'r18': dict(depth=18),
    'r34': dict(depth=34),
    'r152': dict(depth=152),
    'block': dict(shift_place='block'),
    'block-r18': dict(depth=18, shift_place='block'),
    'blockres-r101': dict(depth=101, shift_place='blockres'),
    'shift-div-4': dict(shift_div=4),
    'shift-div-16': dict(shift_div=16, depth=18),
    'no-shift': dict(is_shift=False),
    'segments-3': dict(num_segments=3, depth=18),
    'segments-1': dict(num_segments=1, depth=18),
    'temporal-pool': dict(temporal_pool=True),
    'temporal-pool-block': dict(temporal_pool=True, shift_place='block', depth=18),
    'out-indices': dict(out_indices=(0, 1, 2, 3)),
    # the reference's shift needs layer4: with fewer stages only its unshifted form builds
    'num-stages-3': dict(num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1),
                         is_shift=False),
    'frozen-stages': dict(frozen_stages=2),
    'norm-eval': dict(norm_eval=True),
    'partial-bn': dict(partial_bn=True),
    'with-cp': dict(with_cp=True),
    'strides-dilations': dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)),
    'caffe': dict(style='caffe'),
    'in-channels-2': dict(in_channels=2),
    'group-norm': dict(depth=18, norm_cfg=dict(type='GN', num_groups=16, requires_grad=True)),
    'leaky-relu': dict(depth=18, act_cfg=dict(type='LeakyReLU', negative_slope=0.1)),
    'conv-cfg': dict(depth=18, conv_cfg=dict(type='Conv2d')),
    'non-local-r50-block-res': dict(
        non_local=((0, 0, 0), (1, 0, 1, 0), (0,) * 6, (0, 0, 0)),
        non_local_cfg=dict(sub_sample=True, use_scale=True, mode='embedded_gaussian')),
}


def _pair(mmaction_models, kwargs):
    kwargs = dict(kwargs)
    kwargs.setdefault('depth', 50)
    ref = mmaction_models.ResNetTSM(**kwargs)
    ours = ResNetTSM(**kwargs)
    randomize(ref)
    assert shapes(ref) == shapes(ours)
    assert [n for n, _ in ref.named_modules()] == [n for n, _ in ours.named_modules()]
    return ref, ours


def _clips(model, clips=2, size=32):
    return torch.randn(clips * model.num_segments, model.in_channels, size, size)


@pytest.mark.slow  # parity with MMAction2
@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_parity_with_every_shipped_config(mmaction_models, name):
    kwargs = dict(SHIPPED[name])
    ref, ours = _pair(mmaction_models, kwargs)
    assert_same_numbers(ref, ours, _clips(ours))


def test_every_shipped_config_is_covered():
    assert len(SHIPPED) >= 9, sorted(SHIPPED)  # r50/r101 1x1x8 and 1x1x16, 3 non-local, TPN


@pytest.mark.slow  # parity with MMAction2
@pytest.mark.parametrize('name', sorted(OPTIONS))
def test_parity_for_each_option(mmaction_models, name):
    ref, ours = _pair(mmaction_models, OPTIONS[name])
    assert_same_numbers(ref, ours, _clips(ours))


@pytest.mark.slow  # parity with MMAction2
def test_fewer_stages_with_shift(mmaction_models):
    kwargs = dict(num_stages=3, out_indices=(1, 2), strides=(1, 2, 2), dilations=(1, 1, 1))
    with pytest.raises(AttributeError, match='layer4'):
        mmaction_models.ResNetTSM(18, **kwargs)  # the reference shifts layer4 unconditionally
    model = ResNetTSM(18, **kwargs).eval()
    mid, last = model(torch.randn(16, 3, 32, 32))
    assert mid.shape == (16, 128, 4, 4) and last.shape == (16, 256, 2, 2)
    assert isinstance(model.layer3[0].conv1.conv, TemporalShift)


def test_module_paths_are_mmaction_paths():
    blockres = ResNetTSM(50, pretrained=None)
    assert isinstance(blockres.get_submodule('layer1.0.conv1.conv'), TemporalShift)
    assert 'layer1.0.conv1.conv.net.weight' in blockres.state_dict()
    block = ResNetTSM(50, shift_place='block')
    assert isinstance(block.get_submodule('layer1.0'), TemporalShift)
    assert 'layer1.0.net.conv1.conv.weight' in block.state_dict()
    pooled = ResNetTSM(50, temporal_pool=True)
    assert isinstance(pooled.layer2, TemporalPool)
    assert 'layer2.net.0.conv1.conv.net.weight' in pooled.state_dict()


def test_deep_resnets_shift_every_other_block():
    model = ResNetTSM(101)
    shifted = [i for i, b in enumerate(model.layer3) if isinstance(b.conv1.conv, TemporalShift)]
    assert shifted == list(range(0, 23, 2))
    assert all(isinstance(b.conv1.conv, TemporalShift) for b in ResNetTSM(50).layer3)


def test_stages_after_temporal_pool_see_half_the_frames():
    model = ResNetTSM(50, num_segments=8, temporal_pool=True)
    assert model.layer1[0].conv1.conv.num_segments == 8
    later = (model.layer2.net[0], model.layer3[0], model.layer4[0])
    assert {block.conv1.conv.num_segments for block in later} == {4}
    out = model.eval()(torch.randn(16, 3, 32, 32))
    assert out.shape == (8, 2048, 1, 1)


def test_every_parameter_gets_a_gradient():
    model = ResNetTSM(18, num_segments=4, non_local=((0, 0), (1, 0), (0, 0), (0, 0)),
                      non_local_cfg=dict(mode='dot_product'))
    model.init_weights()
    randomize(model)
    model(torch.randn(8, 3, 32, 32)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_model_pickles_and_reloads(tmp_path):
    model = ResNetTSM(18, num_segments=4, temporal_pool=True).eval()
    x = torch.randn(8, 3, 32, 32)
    path = tmp_path / 'model.pt'
    torch.save(model, path)
    again = torch.load(path, weights_only=False)  # our own file: a full pickle is intended here
    assert torch.equal(again(x), model(x))
    assert pickle.loads(pickle.dumps(model)).layer2.num_segments == 4


def test_init_weights_from_scratch_is_reproducible():
    torch.manual_seed(3)
    a = ResNetTSM(18)
    a.init_weights()
    torch.manual_seed(3)
    b = ResNetTSM(18)
    b.init_weights()
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_train_and_eval_return_self():
    model = ResNetTSM(18)
    assert model.train() is model
    assert model.eval() is model
    assert not model.training


def test_frozen_stages_and_norm_eval_hold_in_train_mode():
    model = ResNetTSM(18, frozen_stages=1, norm_eval=True).train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_public_names():
    for name in ('temporal_shift', 'TemporalShift', 'TemporalPool', 'NL3DWrapper', 'ResNet',
                 'ResNetTSM'):
        assert hasattr(tsmnet, name), name


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=20), r'depth must be one of \[18, 34, 50, 101, 152\], got 20'),
    (dict(depth=50, shift_place='blockres_x'),
     r"shift_place must be one of \('block', 'blockres'\)"),
    (dict(depth=50, shift_div=1), r'shift_div must be >= 2'),
    (dict(depth=50, shift_div=65), r'shift_div=65 leaves no channel to shift.*<= 64'),
    (dict(depth=50, num_segments=0), r'num_segments must be >= 1, got 0'),
    (dict(depth=50, num_segments=1, temporal_pool=True),
     r'temporal_pool=True needs num_segments >= 2'),
    (dict(depth=50, non_local=((0,) * 3, (1,) * 4, (0,) * 6, (0,) * 3)),
     r'non_local asks for non-local blocks but non_local_cfg is empty'),
    (dict(depth=50, non_local=((0,) * 3, (1,) * 3, (0,) * 6, (0,) * 3),
          non_local_cfg=dict(mode='gaussian')),
     r'non_local\[1\] must have one flag per block of stage 2 \(4 blocks for depth 50\), got 3'),
    (dict(depth=50, non_local=(0, 0, 0)), r'non_local must have one entry per stage \(4\), got 3'),
    (dict(depth=50, shift_mode='forward'),
     r"shift_mode must be one of \('bidirectional', 'causal'\)"),
    (dict(depth=50, out_indices=(4,)), r'out_indices must be stage indices in \[0, 3\]'),
    (dict(depth=50, strides=(1, 2)), r'strides and dilations must have num_stages=4 entries'),
    (dict(depth=50, style='tf'), r"style must be one of \('pytorch', 'caffe'\), got 'tf'"),
    (dict(depth=50, pretrained=3), r'pretrained must be a str or None, got int'),
])
def test_construction_errors_name_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ResNetTSM(**kwargs)


@pytest.mark.parametrize('shape, match', [
    ((12, 3, 32, 32),
     r'the batch of input \(12 frames\) must be a positive multiple of num_segments \(8\)'),
    ((0, 3, 32, 32), r'the batch of input \(0 frames\)'),
    ((8, 4, 32, 32), r'input must have in_channels=3 channels, got 4'),
    ((8, 3, 32), r'input must be 4-D \[N \* T, C, H, W\]'),
])
def test_forward_errors_give_the_numbers(shape, match):
    with pytest.raises(ValueError, match=match):
        ResNetTSM(18)(torch.randn(*shape))


def test_forward_refuses_integer_frames():
    with pytest.raises(TypeError, match='floating-point'):
        ResNetTSM(18)(torch.zeros(8, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize('depth, kwargs', [
    (18, {}), (50, {}), (34, dict(num_stages=2, strides=(2, 1), dilations=(1, 1),
                                 out_indices=(1,))),
    (50, dict(shift_place='block', temporal_pool=True)),
    (50, dict(non_local=((0, 0, 0), (1, 0, 1, 0), (0, 0, 0, 0, 0, 0), (0, 0, 0)),
              non_local_cfg=dict(sub_sample=True, use_scale=False, mode='embedded_gaussian',
                                 norm_cfg=dict(type='BN3d', requires_grad=True)))),
])
def test_plain_2d_keys_are_those_of_the_plain_resnet(depth, kwargs):
    """Read off the architecture table, they are the keys of the plain 2D ResNet built with
    the same structure that this model also has (the non-local blocks are not among them)."""
    model = ResNetTSM(depth, num_segments=4, **kwargs)
    plain_kwargs = {k: v for k, v in kwargs.items()
                    if k in ('num_stages', 'strides', 'dilations', 'out_indices')}
    plain = set(tsmnet.ResNet(depth, **plain_kwargs).state_dict())
    keys = model.plain_2d_keys()
    assert keys == plain
    if 'non_local' in kwargs:
        assert any('non_local' in k for k in model.state_dict())
