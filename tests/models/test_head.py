"""TSMHead: MMAction2 1.2.0's arguments, defaults, keys and numbers (forward, view averaging,
loss), and the reference's defects fixed."""

from __future__ import annotations

import inspect

import pytest
import torch
from parity import max_abs_diff
from torch import nn

from tsmnet import TSMHead
from tsmnet.models.head import average_clip

K, C = 5, 16


def _pair(mm, **kwargs):
    ref = mm.TSMHead(num_classes=K, in_channels=C, **kwargs)
    ours = TSMHead(K, C, **kwargs)
    with torch.no_grad():
        ref.fc_cls.weight.normal_(0, 0.1)
        ref.fc_cls.bias.normal_(0, 0.1)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def test_defaults_and_keys_are_mmaction(mmaction_models):
    ref = inspect.signature(mmaction_models.TSMHead).parameters
    ours = inspect.signature(TSMHead).parameters
    for name in ('num_segments', 'spatial_type', 'dropout_ratio', 'init_std', 'is_shift',
                 'temporal_pool'):
        assert ours[name].default == ref[name].default, name
    # None stands for MMAction2's dict defaults (no mutable default)
    assert ref['consensus'].default == dict(type='AvgConsensus', dim=1)
    assert ours['consensus'].default is None and ours['loss_cls'].default is None
    assert ours['average_clips'].default is None  # BaseHead's default
    head = TSMHead(4, 2048)
    assert (head.dropout_ratio, head.init_std, head.consensus.dim) == (0.8, 0.001, 1)
    assert isinstance(head.dropout, nn.Dropout) and head.dropout.p == 0.8
    assert head.avg_pool.output_size == 1
    assert list(head.state_dict()) == list(mmaction_models.TSMHead(4, 2048).state_dict()) == \
        ['fc_cls.weight', 'fc_cls.bias']


def test_init_weights():
    head = TSMHead(400, 2048)
    assert torch.equal(head.fc_cls.bias, torch.zeros(400))
    assert abs(head.fc_cls.weight.std().item() - 0.001) < 1e-4


@pytest.mark.parametrize('kwargs', [
    dict(), dict(temporal_pool=True), dict(num_segments=3, dropout_ratio=0.0),
    dict(dropout_ratio=0.5, consensus=dict(type='AvgConsensus', dim=1)),
])
def test_forward_parity(mmaction_models, kwargs):
    ref, ours = _pair(mmaction_models, **kwargs)
    frames = ours.frames_per_clip
    x = torch.randn(3 * frames, C, 7, 7)
    for train in (False, True):
        ref.train(train)
        ours.train(train)
        torch.manual_seed(3)
        expected = ref(x, num_segs=frames)
        torch.manual_seed(3)
        got = ours(x)
        assert got.shape == (3, K)
        assert max_abs_diff(expected, got) <= 1e-6


@pytest.mark.parametrize('average_clips', ['prob', 'score', None])
def test_average_clip_parity(mmaction_models, average_clips):
    ref, ours = _pair(mmaction_models, average_clips=average_clips)
    scores = torch.randn(2 * 6, K)
    expected = ref.average_clip(scores, num_segs=6)
    got = ours.average_clip(scores, 6)
    assert got.shape == expected.shape
    assert max_abs_diff(expected, got) <= 1e-7
    assert torch.equal(got, average_clip(scores, 6, average_clips))


@pytest.mark.parametrize('labels, kwargs', [
    (torch.tensor([0, 3, 4]), dict()),
    (torch.tensor([0, 3, 4]), dict(label_smooth_eps=0.1)),
    (torch.softmax(torch.randn(3, K), 1), dict()),
    (torch.tensor([1, 1, 2]), dict(loss_cls=dict(type='CrossEntropyLoss', loss_weight=0.5,
                                                 class_weight=[1, 2, 3, 4, 5]))),
])
def test_loss_parity(mmaction_models, labels, kwargs):
    from mmaction.structures import ActionDataSample

    ref, ours = _pair(mmaction_models, **kwargs)
    scores = torch.randn(3, K)
    samples = [ActionDataSample().set_gt_label(y) for y in labels]
    expected = ref.loss_by_feat(scores, samples)['loss_cls']
    assert abs(expected.item() - ours.loss(scores, labels).item()) <= 1e-6


def test_reset():
    head = TSMHead(K, C)
    head.reset(9)
    assert head.num_classes == 9 and head.fc_cls.out_features == 9
    assert head(torch.randn(8, C, 2, 2)).shape == (1, 9)


# -- the reference's defects, fixed ------------------------------------------------------------

def test_other_consensus_refused_at_construction(mmaction_models):
    ref = mmaction_models.TSMHead(K, C, consensus=dict(type='MaxConsensus'))
    with pytest.raises(TypeError, match='NoneType'):  # the reference crashes in forward
        ref(torch.randn(8, C, 2, 2), num_segs=8)
    with pytest.raises(ValueError, match="consensus type must be 'AvgConsensus'"):
        TSMHead(K, C, consensus=dict(type='MaxConsensus'))
    with pytest.raises(ValueError, match='consensus dim must be 1'):
        TSMHead(K, C, consensus=dict(type='AvgConsensus', dim=2))


def test_spatial_type_other_than_avg_refused(mmaction_models):
    ref = mmaction_models.TSMHead(K, C, spatial_type='max')
    assert ref.avg_pool is None  # the reference silently skips pooling
    with pytest.raises(ValueError, match="spatial_type must be 'avg' or None"):
        TSMHead(K, C, spatial_type='max')
    pooled = TSMHead(K, C, spatial_type=None)
    assert pooled(torch.randn(8, C)).shape == (1, K)


def test_temporal_pool_without_shift_keeps_clips_apart(mmaction_models):
    """A backbone with ``temporal_pool`` pools whether or not it shifts; the reference head
    halves ``num_segments`` only when ``is_shift``, so it averages two clips into one."""
    ref, ours = _pair(mmaction_models, is_shift=False, temporal_pool=True, dropout_ratio=0.0)
    x = torch.randn(4 * 4, C, 2, 2)  # 4 clips of 8 frames pooled to 4
    assert ref(x, num_segs=8).shape == (2, K)  # wrong: 2 scores for 4 clips
    assert ours(x).shape == (4, K)


def test_odd_segments_with_temporal_pool(mmaction_models):
    """The pooled clip has ceil(T / 2) frames (tsmnet's TemporalPool); the reference views
    T // 2 and mixes the frames of neighbouring clips."""
    ref, ours = _pair(mmaction_models, num_segments=5, temporal_pool=True, dropout_ratio=0.0)
    x = torch.randn(2 * 3, C, 2, 2)  # 2 clips of 3 pooled frames
    assert ref(x, num_segs=5).shape == (3, K)  # wrong: 3 scores for 2 clips
    got = ours(x)
    assert got.shape == (2, K)
    assert max_abs_diff(got[1], ours(x[3:])[0]) <= 1e-6


@pytest.mark.parametrize('kwargs, match', [
    (dict(average_clips='mean'), 'average_clips'),
    (dict(num_classes=0), 'num_classes'),
    (dict(in_channels=-1), 'in_channels'),
    (dict(num_segments=0), 'num_segments'),
    (dict(dropout_ratio=1.0), 'dropout_ratio'),
    (dict(loss_cls=dict(type='FocalLoss')), 'loss_cls'),
])
def test_bad_arguments(kwargs, match):
    args = dict(num_classes=K, in_channels=C) | kwargs
    with pytest.raises(ValueError, match=match):
        TSMHead(**args)


def test_bad_features():
    head = TSMHead(K, C, num_segments=4)
    with pytest.raises(ValueError, match=r'N \* 4 frames'):
        head(torch.randn(6, C, 2, 2))
    with pytest.raises(ValueError, match=f'{C}'):
        head(torch.randn(8, C + 1, 2, 2))
    with pytest.raises(ValueError, match='num_views'):
        head.average_clip(torch.randn(5, K), 2)
