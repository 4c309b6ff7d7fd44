"""create_model's architecture arguments (tsmnet.models.factory): the backbone is built first
and the head follows it (depth, num_segments, is_shift, temporal_pool), a TSN built with
``is_shift=False`` loads a TSM checkpoint strictly, and bad arguments are named.

Checkpoints are synthetic, in MMAction2's layout, written to ``tmp_path``; nothing downloads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from parity import randomize

import tsmnet
from tsmnet.layers import TemporalPool, TemporalShift
from tsmnet.weights.checkpoint import CheckpointMismatchError, rewrap_state_dict, unwrap_key

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
MBV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'
T = 2
# the small versions of each backbone family that the points below need
SMALL = {'resnet18': (R50, dict(depth=18)), 'mobilenetv2': (MBV2, {})}
WRAPPERS = ('net', 'block')


def _small(family: str, **kwargs) -> tsmnet.Recognizer:
    name, arch = SMALL[family]
    return tsmnet.create_model(name, num_segments=T, **arch, **kwargs)


def _mmaction_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    """A file in the layout of MMAction2's released checkpoints: ``meta`` + ``state_dict``."""
    torch.save({'meta': {'mmengine_version': '0.10.7', 'epoch': 50, 'iter': 1000, 'seed': 0,
                         'dataset_meta': None}, 'state_dict': model.state_dict()}, path)
    return path


def _shifts(model: torch.nn.Module) -> int:
    return sum(isinstance(m, TemporalShift) for m in model.modules())


def _shifted_keys(model: torch.nn.Module) -> int:
    return sum('.net.' in key for key in model.state_dict())


def _by_plain_key(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    plain = {unwrap_key(k, WRAPPERS): v for k, v in state.items()}
    assert len(plain) == len(state)  # no two keys share an unwrapped form
    return plain


def test_depth_gives_a_head_of_the_backbone_channels():
    model = tsmnet.create_model(R50, depth=18, num_segments=T, num_classes=3)
    assert model.backbone.depth == 18 and model.backbone.feat_dim == 512
    assert model.cls_head.in_channels == model.cls_head.fc_cls.in_features == 512
    assert model.eval()(torch.randn(2, T, 3, 32, 32)).shape == (2, 3)


def test_depth_against_the_released_depth_is_a_mismatch(tmp_path):
    path = _mmaction_checkpoint(_small('resnet18'), tmp_path / 'r18.pth')
    with pytest.raises(CheckpointMismatchError, match=r'missing keys: backbone\.layer1\.2\.'):
        tsmnet.create_model(R50, depth=34, num_segments=T, pretrained=path)


@pytest.mark.slow
@pytest.mark.parametrize('family', sorted(SMALL))
def test_is_shift_false_is_a_tsn_that_loads_tsm_weights(tmp_path, family):
    tsm = _small(family)
    randomize(tsm)
    path = _mmaction_checkpoint(tsm, tmp_path / 'tsm.pth')
    tsn = _small(family, is_shift=False, pretrained=path)  # strict: the whole recognizer
    assert _shifts(tsm) > 0 and _shifts(tsn) == 0
    assert tsn.backbone.is_shift is False and tsn.cls_head.is_shift is False
    assert tsm.cls_head.is_shift is True
    ours, theirs = _by_plain_key(tsn), _by_plain_key(tsm)
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key
    report = tsn.load_checkpoint(path)
    assert report.complete and len(report.rewrapped) == _shifted_keys(tsm) > 0
    assert all('.net.' not in key for key in report.rewrapped)
    # a TSN sees each frame alone (frame 0's features, bit for bit, whatever frame 1 holds);
    # the TSM with the same weights mixes frames (faintly in a random MobileNetV2)
    clip = torch.randn(1, T, 3, 32, 32)
    other = clip.clone()
    other[:, 1] = torch.randn(3, 32, 32)
    with torch.no_grad():
        tsn.eval(), tsm.eval()
        assert torch.equal(tsn.forward_features(clip)[0], tsn.forward_features(other)[0])
        assert not torch.equal(tsm.forward_features(clip)[0], tsm.forward_features(other)[0])


def test_tsn_weights_load_into_a_tsm_and_backbone_only():
    tsn = _small('resnet18', is_shift=False)
    tsm = _small('resnet18', num_classes=3)
    report = tsm.load_checkpoint(tsn.state_dict(), head=False)  # another num_classes
    assert report.complete and all('.net.' in key for key in report.rewrapped)
    assert len(report.rewrapped) == _shifted_keys(tsm) > 0
    assert torch.equal(tsm.backbone.layer1[0].conv1.conv.net.weight,
                       tsn.backbone.layer1[0].conv1.conv.weight)


def test_wrapper_mismatches_are_still_refused():
    tsm, tsn = _small('resnet18'), _small('resnet18', is_shift=False)
    shifted = 'backbone.layer1.0.conv1.conv.net.weight'
    missing = tsm.state_dict()
    del missing[shifted]
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing keys: backbone\.layer1\.0\.conv1\.conv\.weight'):
        tsn.load_checkpoint(missing)
    # the plain and the wrapped key both in the file: neither is dropped to make it fit
    both = tsm.state_dict()
    both['backbone.layer1.0.conv1.conv.weight'] = both[shifted].clone()
    before = tsn.backbone.layer1[0].conv1.conv.weight.clone()
    with pytest.raises(CheckpointMismatchError, match=rf'unexpected keys: {shifted}'):
        tsn.load_checkpoint(both)
    assert torch.equal(tsn.backbone.layer1[0].conv1.conv.weight, before)  # nothing loaded


def test_rewrap_state_dict_keeps_every_key():
    model_keys = ['a.conv.weight', 'b.conv.net.weight', 'c.weight']
    state = {k: torch.tensor(float(i)) for i, k in enumerate(
        ['a.conv.net.weight', 'b.conv.weight', 'c.weight', 'c.net.weight', 'd.net.weight'])}
    out = rewrap_state_dict(state, model_keys, ('net',))
    # a and b move (both directions); c is the file's own, so c.net stays for the report;
    # d has no model key
    assert list(out) == ['a.conv.weight', 'b.conv.net.weight', 'c.weight', 'c.net.weight',
                         'd.net.weight']
    assert [v.item() for v in out.values()] == [0., 1., 2., 3., 4.]


@pytest.mark.quick_only('resnet18')
@pytest.mark.parametrize('family', sorted(SMALL))
def test_num_segments_and_is_shift_reach_both_parts(family):
    model = tsmnet.create_model(SMALL[family][0], **SMALL[family][1], num_segments=4,
                                num_classes=3)
    assert model.backbone.num_segments == model.cls_head.num_segments == 4
    assert model.backbone.is_shift and model.cls_head.is_shift
    assert {m.num_segments for m in model.modules() if isinstance(m, TemporalShift)} == {4}
    assert model.eval()(torch.randn(1, 4, 3, 32, 32)).shape == (1, 3)


@pytest.mark.slow
def test_temporal_pool_reaches_both_parts():
    model = tsmnet.create_model(R50, depth=18, num_segments=4, temporal_pool=True,
                                num_classes=3)
    assert model.backbone.temporal_pool and model.cls_head.temporal_pool
    assert isinstance(model.backbone.layer2, TemporalPool)
    assert model.eval()(torch.randn(1, 4, 3, 32, 32)).shape == (1, 3)
    # MobileNetV2TSM cannot pool time: refused by name; False is what it does anyway
    with pytest.raises(TypeError, match='temporal_pool'):
        _small('mobilenetv2', temporal_pool=True)
    assert not _small('mobilenetv2', temporal_pool=False).cls_head.temporal_pool


@pytest.mark.parametrize('family', sorted(SMALL))
@pytest.mark.parametrize('kwargs, error, match', [
    (dict(colour='red'), TypeError, "unexpected keyword argument 'colour'"),
    (dict(in_channels=512), TypeError, 'in_channels'),
    (dict(shift_div=0), ValueError, 'shift_div'),
])
def test_bad_kwargs_are_named(family, kwargs, error, match):
    with pytest.raises(error, match=match):
        _small(family, **kwargs)


def test_bad_depth_is_named():
    with pytest.raises(ValueError, match='depth must be one of'):
        tsmnet.create_model(R50, depth=19)
