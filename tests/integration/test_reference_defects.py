"""The twelve defects of MMAction2 1.2.0's ResNetTSM (DESIGN.md): each test shows the
reference wrong, on the installed MMAction2, and tsmnet right."""

from __future__ import annotations

import inspect
import math
import pickle

import pytest
import torch
from parity import randomize

import tsmnet
from tsmnet import NL3DWrapper, ResNetTSM, TemporalPool, TemporalShift, temporal_shift
from tsmnet.shift import temporal_shift_reference
from tsmnet.weights.checkpoint import CheckpointMismatchError

NL_CFG = dict(sub_sample=True, use_scale=False, mode='embedded_gaussian')


def test_1_padding_is_exact_zeros_when_the_input_holds_inf(mmaction_tsm, mmaction_models):
    x = torch.randn(8, 16, 2, 2)
    x[0, :4] = math.inf  # the reference derives both paddings from frame 0's folds
    ref = mmaction_tsm.TemporalShift.shift(x, 8, shift_div=8)
    assert ref[7, :2].isnan().all() and ref[0, 2:4].isnan().all()  # the reference: x - x
    ours = temporal_shift(x, 8, shift_div=8)
    assert torch.equal(ours[7, :2], torch.zeros(2, 2, 2))
    assert torch.equal(ours[0, 2:4], torch.zeros(2, 2, 2))
    assert not ours.isnan().any()


@pytest.mark.slow
def test_2_non_local_after_temporal_pool_never_mixes_clips(mmaction_models):
    kwargs = dict(depth=50, num_segments=4, temporal_pool=True,
                  non_local=((0,) * 3, (1, 0, 0, 0), (0,) * 6, (0,) * 3), non_local_cfg=NL_CFG)
    ref = mmaction_models.ResNetTSM(**kwargs)
    randomize(ref)
    ours = ResNetTSM(**kwargs)
    ours.load_state_dict(ref.state_dict())
    # float64: a float32 conv may round differently for another batch size (about 1e-4 here)
    ref.double().eval()
    ours.double().eval()
    clip, other_a, other_b = (torch.randn(4, 3, 32, 32, dtype=torch.float64) for _ in range(3))
    with torch.no_grad():
        ref_a = ref(torch.cat([clip, other_a]))[:2]
        ref_b = ref(torch.cat([clip, other_b]))[:2]
        ours_a = ours(torch.cat([clip, other_a]))[:2]
        ours_b = ours(torch.cat([clip, other_b]))[:2]
        ours_alone = ours(clip)
    assert (ref_a - ref_b).abs().max() > 1e-3  # the reference: clip 0 depends on clip 1
    torch.testing.assert_close(ours_a, ours_b, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours_a, ours_alone, rtol=0, atol=1e-5)
    assert ours.layer2.net[0].num_segments == 2  # the non-local block sees the pooled clip


@pytest.mark.slow
def test_3_odd_num_segments_with_temporal_pool(mmaction_models):
    ref = mmaction_models.ResNetTSM(18, num_segments=5, temporal_pool=True)
    ref.eval()
    with pytest.raises(RuntimeError):
        ref(torch.randn(10, 3, 32, 32))  # the reference assumes an even T
    ours = ResNetTSM(18, num_segments=5, temporal_pool=True).double().eval()
    x = torch.randn(10, 3, 32, 32, dtype=torch.float64)
    out = ours(x)
    assert out.shape[0] == 2 * 3  # ceil(5 / 2) frames per clip
    assert ours.layer3[0].conv1.conv.num_segments == 3
    torch.testing.assert_close(ours(x[5:]), out[3:], rtol=0, atol=1e-5)


def test_4_non_local_without_config_is_refused(mmaction_tsm, mmaction_models):
    non_local = ((0,) * 3, (1, 0, 1, 0), (0,) * 6, (0,) * 3)
    ref = mmaction_models.ResNetTSM(50, non_local=non_local)
    assert not any(isinstance(m, mmaction_tsm.NL3DWrapper)
                   for m in ref.modules())  # the reference silently drops them
    with pytest.raises(ValueError, match='non_local_cfg is empty'):
        ResNetTSM(50, non_local=non_local)


def test_5_shift_place_is_matched_exactly(mmaction_models):
    mmaction_models.ResNetTSM(18, shift_place='not-blockres')  # accepted: a substring match
    with pytest.raises(NotImplementedError):
        mmaction_models.ResNetTSM(18, shift_place='channels')
    for bad in ('not-blockres', 'channels'):
        with pytest.raises(ValueError, match=r"shift_place must be one of \('block', 'blockres'\)"):
            ResNetTSM(18, shift_place=bad)


def test_6_pretrained2d_without_checkpoint_initialises_from_scratch(mmaction_models):
    with pytest.raises(TypeError, match='got .NoneType.'):
        mmaction_models.ResNetTSM(18, pretrained=None, pretrained2d=True).init_weights()
    ours = ResNetTSM(18, pretrained=None, pretrained2d=True)
    ours.init_weights()
    assert ours.conv1.bn.weight.eq(1).all()  # the init_cfg's constant BN init ran
    assert ours.conv1.conv.weight.std() > 0


def _torchvision_state_dict(depth: int) -> dict[str, torch.Tensor]:
    """A torchvision-keyed state dict built from a plain tsmnet ResNet's own shapes."""
    from tsmnet.models.resnet import ResNet

    plain = ResNet(depth)
    out = {}
    for key, value in plain.state_dict().items():
        key = key.replace('conv1.conv.', 'conv1.', 1) if key.startswith('conv1.') else key
        key = key.replace('conv1.bn.', 'bn1.', 1) if key.startswith('conv1.bn.') else key
        for i in (1, 2, 3):
            key = key.replace(f'.conv{i}.conv.', f'.conv{i}.').replace(f'.conv{i}.bn.', f'.bn{i}.')
        key = key.replace('downsample.conv.', 'downsample.0.').replace('downsample.bn.',
                                                                        'downsample.1.')
        out[key] = torch.randn(value.shape) if value.is_floating_point() else value
    out['fc.weight'] = torch.randn(1000, plain.feat_dim)
    out['fc.bias'] = torch.randn(1000)
    return out


@pytest.mark.slow
def test_7_torchvision_loader_is_strict_and_logs(mmaction_models, tmp_path, capsys):
    state = _torchvision_state_dict(18)
    good = tmp_path / 'resnet18.pth'
    torch.save(state, good)
    ref = mmaction_models.ResNetTSM(18, pretrained=str(good))
    ref.init_weights()
    assert 'wrapped_name' in capsys.readouterr().out  # the reference prints every key
    ours = ResNetTSM(18, pretrained=str(good))
    ours.init_weights()
    assert capsys.readouterr().out == ''
    for (name, a), b in zip(ref.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), name

    del state['layer2.0.conv1.weight']
    partial = tmp_path / 'partial.pth'
    torch.save(state, partial)
    ref = mmaction_models.ResNetTSM(18, pretrained=str(partial))
    before = ref.layer2[0].conv1.conv.net.weight.clone()
    ref.init_weights()  # the reference loads the rest and leaves this conv as it was
    assert torch.equal(ref.layer2[0].conv1.conv.net.weight, before)
    with pytest.raises(CheckpointMismatchError, match=r'missing keys: layer2\.0\.conv1\.conv\.net'):
        ResNetTSM(18, pretrained=str(partial)).init_weights()

    state['layer2.0.conv1.weight'] = torch.randn(128, 64, 3, 3)
    state['layer3.1.bn2.weight'] = torch.randn(7)
    mismatched = tmp_path / 'mismatched.pth'
    torch.save(state, mismatched)
    with pytest.raises(CheckpointMismatchError,
                       match=r'layer3\.1\.conv2\.bn\.weight \(checkpoint \(7,\), model \(256,\)\)'):
        ResNetTSM(18, pretrained=str(mismatched)).init_weights()


def test_8_train_returns_self(mmaction_models):
    assert mmaction_models.ResNetTSM(18).eval() is None
    model = ResNetTSM(18)
    assert model.eval() is model and model.train(True) is model


def test_9_non_local_on_basic_blocks_and_block_shifts(mmaction_models):
    non_local = ((0, 0), (1, 0), (1, 0), (0, 0))
    with pytest.raises(AttributeError):
        mmaction_models.ResNetTSM(18, non_local=non_local, non_local_cfg=NL_CFG)
    with pytest.raises(AttributeError):
        mmaction_models.ResNetTSM(18, shift_place='block', non_local=non_local,
                                  non_local_cfg=NL_CFG)
    for place in ('blockres', 'block'):
        ours = ResNetTSM(18, shift_place=place, non_local=non_local, non_local_cfg=NL_CFG).eval()
        assert isinstance(ours.layer2[0], NL3DWrapper)
        assert ours.layer2[0].non_local_block.in_channels == 128
        assert ours(torch.randn(16, 3, 32, 32)).shape == (16, 512, 1, 1)


def test_10_temporal_pool_is_importable_and_picklable(mmaction_models):
    ref = mmaction_models.ResNetTSM(18, temporal_pool=True)
    with pytest.raises((AttributeError, pickle.PicklingError)):
        pickle.dumps(ref)
    ours = ResNetTSM(18, temporal_pool=True)
    assert type(ours.layer2) is tsmnet.TemporalPool
    assert isinstance(pickle.loads(pickle.dumps(ours)).layer2, TemporalPool)


def test_11_one_default_and_no_mutable_defaults(mmaction_tsm, mmaction_models):
    ref_shift = mmaction_tsm.TemporalShift.shift
    assert inspect.signature(ref_shift).parameters['shift_div'].default == 3
    assert inspect.signature(temporal_shift).parameters['shift_div'].default == 8
    assert inspect.signature(TemporalShift).parameters['shift_div'].default == 8
    for obj in (ResNetTSM, tsmnet.ResNet, TemporalShift, TemporalPool, NL3DWrapper,
                temporal_shift):
        for param in inspect.signature(obj).parameters.values():
            assert not isinstance(param.default, (dict, list, set)), (obj, param.name)


@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
def test_12_fast_shift_equals_a_plain_loop(mode):
    x = torch.randn(3 * 5, 24, 3, 3)
    expected = temporal_shift_reference(x, 5, 8, mode)
    assert torch.equal(temporal_shift(x, 5, 8, mode), expected)
    x.requires_grad_()
    out = temporal_shift(x, 5, 8, mode)
    assert torch.equal(out, expected)
    g = torch.randn_like(out)
    out.backward(g)
    x_loop = x.detach().clone().requires_grad_()
    temporal_shift_reference(x_loop, 5, 8, mode).backward(g)
    assert torch.equal(x.grad, x_loop.grad)
