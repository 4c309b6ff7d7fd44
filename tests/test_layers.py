"""TemporalShift, TemporalPool and NL3DWrapper: parity with MMAction2's modules, and errors."""

from __future__ import annotations

import pytest
import torch
from parity import randomize
from torch import nn

from tsmnet import NL3DWrapper, ResNetTSM, TemporalPool, TemporalShift
from tsmnet.models.resnet import BasicBlock, Bottleneck


def test_temporal_shift_module_matches_mmaction(mmaction_tsm, mmaction_models):
    conv = nn.Conv2d(16, 8, 3, padding=1)
    ref = mmaction_tsm.TemporalShift(conv, num_segments=4, shift_div=4)
    ours = TemporalShift(conv, num_segments=4, shift_div=4)
    x = torch.randn(8, 16, 5, 5)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
    assert ours.net is conv and ours.num_segments == 4 and ours.shift_div == 4
    assert 'num_segments=4, shift_div=4' in repr(ours)


def test_temporal_pool_matches_the_reference_for_even_segments(mmaction_models):
    ref_model = mmaction_models.ResNetTSM(18, num_segments=6, temporal_pool=True)
    ref_pool = ref_model.layer2
    ours = TemporalPool(ref_pool.net, 6)
    x = torch.randn(12, 64, 8, 8)
    torch.testing.assert_close(ours(x), ref_pool(x), rtol=0, atol=0)


@pytest.mark.parametrize('segments', [2, 3, 5, 8])
def test_temporal_pool_keeps_the_max_of_each_window(segments):
    pool = TemporalPool(nn.Identity(), segments)
    x = torch.randn(2 * segments, 3, 2, 2)
    out = pool(x).view(2, pool.out_segments, 3, 2, 2)
    clips = x.view(2, segments, 3, 2, 2)
    for t in range(pool.out_segments):
        window = clips[:, max(0, 2 * t - 1):2 * t + 2]
        torch.testing.assert_close(out[:, t], window.amax(dim=1), rtol=0, atol=0)


@pytest.mark.parametrize('mode', ['embedded_gaussian', 'gaussian', 'dot_product'])
def test_nl3d_wrapper_matches_mmaction(mmaction_tsm, mmaction_models, mode):
    block = Bottleneck(64, 16)
    cfg = dict(sub_sample=True, use_scale=False, mode=mode, norm_cfg=dict(type='BN3d'))
    ref = mmaction_tsm.NL3DWrapper(block, 4, cfg)
    randomize(ref)
    ours = NL3DWrapper(block, 4, cfg)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(8, 64, 6, 6)
    ref.eval()
    ours.eval()
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def test_nl3d_wrapper_reads_channels_from_any_block():
    assert NL3DWrapper(BasicBlock(32, 32), 4).non_local_block.in_channels == 32
    assert NL3DWrapper(Bottleneck(64, 16), 4).non_local_block.in_channels == 64
    shifted = TemporalShift(BasicBlock(32, 48, downsample=nn.Conv2d(32, 48, 1)), 4)
    assert NL3DWrapper(shifted, 4).non_local_block.in_channels == 48


def test_wrappers_check_the_batch():
    with pytest.raises(ValueError, match=r'\(6 frames\) must be a multiple of num_segments \(4\)'):
        TemporalPool(nn.Identity(), 4)(torch.randn(6, 3, 2, 2))
    with pytest.raises(ValueError, match=r'\(6 frames\) must be a multiple of num_segments \(4\)'):
        TemporalShift(nn.Identity(), 4)(torch.randn(6, 8, 2, 2))
    with pytest.raises(ValueError, match='num_segments >= 2'):
        TemporalPool(nn.Identity(), 1)
    with pytest.raises(ValueError, match=r'shift_div must be >= 2'):
        TemporalShift(nn.Identity(), 4, shift_div=1)


def test_channels_last_frames_give_the_same_features():
    model = ResNetTSM(18, num_segments=4).eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        got = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
