"""Recognizer: parity with MMAction2 1.2.0's own Recognizer2D + TSMHead built from the shipped TSM
configs (same weights, same input), state-dict keys, view averaging, batch independence,
checkpoint loading and bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope
from parity import max_abs_diff, randomize

import tsmnet
from tsmnet import MobileNetV2TSM, Recognizer, ResNetTSM, TSMHead
from tsmnet.weights.checkpoint import CheckpointMismatchError

CONFIGS = 'recognition/tsm'
R50_K400 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
R50_NL = 'tsm_imagenet-pretrained-r50-nl-embedded-gaussian_8xb16-1x1x8-50e_kinetics400-rgb'
R101_SSV2 = 'tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb'
MBV2_K400 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'

# config, backbone overrides (small: T=4 frames of 32x32, fewer classes keep it fast)
CASES = {
    'r50': (R50_K400, dict()),
    'r18': (R50_K400, dict(depth=18)),
    'r101-sthv2': (R101_SSV2, dict()),
    'r50-non-local': (R50_NL, dict()),
    'r50-temporal-pool': (R50_K400, dict(temporal_pool=True)),
    'mobilenet-v2': (MBV2_K400, dict()),
}
T = 4


def _config(name: str):
    from mmengine.config import Config

    root = Path(importlib.util.find_spec('mmaction').origin).parent / '.mim' / 'configs'
    return Config.fromfile(root / CONFIGS / f'{name}.py').model


def _pair(mm, case: str, average_clips='prob', dropout_ratio=None):
    """MMAction2's Recognizer2D with MMAction2's own backbone and head, and tsmnet's, with
    the reference's (randomised) weights loaded strictly into tsmnet's."""
    config, overrides = CASES[case]
    model = _config(config)
    backbone = {k: v for k, v in model.backbone.to_dict().items() if k != 'type'}
    backbone.update(pretrained=None, num_segments=T, **overrides)
    head = {k: v for k, v in model.cls_head.to_dict().items() if k != 'type'}
    mobile = model.backbone.type == 'MobileNetV2TSM'
    head.update(num_segments=T, temporal_pool=backbone.get('temporal_pool', False),
                average_clips=average_clips)
    if dropout_ratio is not None:
        head['dropout_ratio'] = dropout_ratio
    if overrides.get('depth') == 18:
        head['in_channels'] = 512
    ref_backbone = (mm.MobileNetV2TSM if mobile else mm.ResNetTSM)(**backbone)
    with DefaultScope.overwrite_default_scope('mmaction'):
        ref = mm.Recognizer2D(backbone=dict(model.backbone, pretrained=None, num_segments=T,
                                            **overrides),
                              cls_head=dict(type='TSMHead', **head))
    ref.backbone = ref_backbone  # MMAction2's own class (the registry gives tsmnet's)
    ref.cls_head = mm.TSMHead(**head)
    assert type(ref.cls_head).__module__.startswith('mmaction.')
    randomize(ref)
    with torch.no_grad():
        ref.cls_head.fc_cls.weight.normal_(0, 0.05)
        ref.cls_head.fc_cls.bias.normal_(0, 0.05)
    head.pop('loss_cls', None)
    ours = Recognizer((MobileNetV2TSM if mobile else ResNetTSM)(**backbone), TSMHead(**head))
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}
    return ref, ours


def _predict(ref, x: torch.Tensor) -> torch.Tensor:
    """MMAction2's test step on ``[N, V, T, C, H, W]``: inputs ``[N, V * T, C, H, W]``."""
    from mmaction.structures import ActionDataSample

    samples = [ActionDataSample() for _ in range(x.shape[0])]
    out = ref(x.flatten(1, 2), samples, mode='predict')
    return torch.stack([s.pred_score for s in out])


@pytest.mark.slow  # parity with MMAction2: 5-20 s of CPU each
@pytest.mark.parametrize('case', sorted(CASES))
def test_parity_with_mmaction_recognizer2d(mmaction_models, case):
    ref, ours = _pair(mmaction_models, case)
    gen = torch.Generator().manual_seed(0)
    views = torch.randn(2, 2, T, 3, 32, 32, generator=gen)  # 2 videos x 2 views
    ref.eval()
    ours.eval()
    with torch.no_grad():
        expected = _predict(ref, views)
        got = ours(views)
        assert got.shape == (2, ours.num_classes)
        assert max_abs_diff(expected, got) <= 1e-5
        clips = views[:, 0].contiguous()
        assert max_abs_diff(ref(clips, mode='tensor', stage='head'), ours(clips)) <= 1e-5
    # train mode in float64 (train-mode batch norm over few values is ill-conditioned in
    # float32), dropout drawing the same mask from the same seed
    ref.double().train()
    ours.double().train()
    clips = clips.double()
    with torch.no_grad():
        torch.manual_seed(1)
        expected = ref(clips, mode='tensor', stage='head')
        torch.manual_seed(1)
        got = ours(clips)
    assert max_abs_diff(expected, got) <= 1e-5
    for (name, a), b in zip(ref.state_dict().items(), ours.state_dict().values()):
        assert max_abs_diff(a, b) <= 1e-5, f'{name} after a train forward'


@pytest.mark.slow
def test_loss_and_gradients_match(mmaction_models):
    from mmaction.structures import ActionDataSample

    ref, ours = _pair(mmaction_models, 'r18')
    ref.double().train()
    ours.double().train()
    x = torch.randn(2, T, 3, 32, 32, dtype=torch.float64)
    labels = torch.tensor([3, 7])
    samples = [ActionDataSample().set_gt_label(int(y)) for y in labels]
    torch.manual_seed(2)
    ref_loss = ref(x, samples, mode='loss')['loss_cls']
    torch.manual_seed(2)
    our_loss = ours.cls_head.loss(ours(x), labels)
    assert abs(ref_loss.item() - our_loss.item()) <= 1e-10
    ref_loss.backward()
    our_loss.backward()
    ours_params = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        assert max_abs_diff(p.grad, ours_params[name].grad) <= 1e-8, name


@pytest.mark.parametrize('average_clips', ['prob', 'score', None])
def test_average_clips_as_mmaction(mmaction_models, average_clips):
    ref, ours = _pair(mmaction_models, 'r18', average_clips=average_clips)
    ref.eval()
    ours.eval()
    views = torch.randn(2, 3, T, 3, 32, 32)
    with torch.no_grad():
        scores = ref(views.flatten(0, 1), mode='tensor', stage='head')
        expected = ref.cls_head.average_clip(scores, num_segs=3)
        got = ours(views)
    shape = (2, 3, ours.num_classes) if average_clips is None else (2, ours.num_classes)
    assert got.shape == expected.shape == shape
    assert max_abs_diff(expected, got) <= 1e-5


@pytest.mark.slow
def test_scores_independent_of_batch_and_views():
    model = _small_model().eval()
    videos = torch.randn(3, 4, T, 3, 32, 32)
    with torch.no_grad():
        together = model(videos)
        alone = torch.cat([model(videos[i:i + 1]) for i in range(3)])
        # each view alone, averaged by hand ('prob')
        by_view = torch.stack([model(videos[:, v]).softmax(-1) for v in range(4)], 1).mean(1)
    assert max_abs_diff(together, alone) <= 1e-6
    assert max_abs_diff(together, by_view) <= 1e-6
    model.max_views = 3  # views in chunks: the same scores
    with torch.no_grad():
        assert max_abs_diff(model(videos), together) <= 1e-6


def _small_model(num_classes: int = 5, **head) -> Recognizer:
    backbone = ResNetTSM(18, num_segments=T, pretrained=None)
    return Recognizer(backbone, TSMHead(num_classes, 512, num_segments=T,
                                        average_clips=head.pop('average_clips', 'prob'), **head))


def _mmaction_checkpoint(model: Recognizer, path: Path) -> None:
    """A checkpoint in the layout of MMAction2's released files: ``meta`` + ``state_dict``."""
    torch.save({'meta': {'mmengine_version': '0.10.7', 'epoch': 50, 'iter': 1000,
                         'dataset_meta': None, 'seed': 0},
                'state_dict': model.state_dict()}, path)


@pytest.mark.slow
def test_loads_released_checkpoint_layouts(tmp_path):
    source = _small_model()
    randomize(source)
    whole, bare = tmp_path / 'whole.pth', tmp_path / 'bare.pth'
    _mmaction_checkpoint(source, whole)
    torch.save(source.state_dict(), bare)
    x = torch.randn(1, T, 3, 32, 32)
    expected = source.eval()(x)
    for path in (whole, bare):
        model = _small_model()
        report = model.load_checkpoint(path)
        assert report.complete and not report.missing
        assert torch.equal(model.eval()(x), expected)
    model = Recognizer.from_pretrained(ResNetTSM(18, num_segments=T, pretrained=None),
                                       TSMHead(5, 512, num_segments=T), whole)
    assert torch.equal(model.cls_head.fc_cls.weight, source.cls_head.fc_cls.weight)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = tmp_path / 'other.pth'
    _mmaction_checkpoint(_small_model(num_classes=7), path)
    model = _small_model(num_classes=5)
    before = model.cls_head.fc_cls.weight.clone()
    with pytest.raises(CheckpointMismatchError, match='cls_head.fc_cls.weight'):
        model.load_checkpoint(path)
    assert torch.equal(model.cls_head.fc_cls.weight, before)  # nothing loaded


def test_unsafe_checkpoint_is_refused(tmp_path):
    from tsmnet.weights.checkpoint import UnsafeCheckpointError

    path = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': _small_model().state_dict(), 'meta': {'obj': Path('x')}}, path)
    with pytest.raises(UnsafeCheckpointError):
        _small_model().load_checkpoint(path)


def test_reset_head():
    model = _small_model()
    model.reset_head(11)
    assert model.num_classes == 11
    assert model(torch.randn(2, T, 3, 32, 32)).shape == (2, 11)
    assert model.get_classifier() is model.cls_head.fc_cls
    with pytest.raises(ValueError, match='num_classes'):
        model.reset_head(0)


def test_train_returns_self():
    model = _small_model()
    assert model.eval() is model and model.train() is model


@pytest.mark.parametrize('shape, match', [
    ((2, T + 1, 3, 32, 32), 'num_segments'),
    ((2 * T, 3, 32, 32), r'\[N, T, C, H, W\]'),
    ((0, T, 3, 32, 32), 'at least one clip'),
])
def test_bad_clips(shape, match):
    with pytest.raises(ValueError, match=match):
        _small_model()(torch.randn(shape))


def test_mismatched_backbone_and_head():
    backbone = ResNetTSM(18, num_segments=T, pretrained=None)
    with pytest.raises(ValueError, match='num_segments=6 is not a multiple'):
        Recognizer(backbone, TSMHead(5, 512, num_segments=6))
    # a multiple: the backbone shifts within groups of T frames (MMAction2's MobileOne-S4)
    assert Recognizer(backbone, TSMHead(5, 512, num_segments=2 * T)).num_segments == 2 * T
    with pytest.raises(ValueError, match='in_channels'):
        Recognizer(backbone, TSMHead(5, 2048, num_segments=T))
    with pytest.raises(ValueError, match='temporal_pool'):
        Recognizer(backbone, TSMHead(5, 512, num_segments=T, temporal_pool=True))
    with pytest.raises(ValueError, match='max_views'):
        Recognizer(backbone, TSMHead(5, 512, num_segments=T), max_views=0)


def test_exported_names():
    assert tsmnet.Recognizer is Recognizer and tsmnet.TSMHead is TSMHead


@pytest.mark.slow
def test_pickles_and_copies():
    import copy
    import pickle

    model = _small_model().eval()
    x = torch.randn(1, T, 3, 32, 32)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert torch.equal(clone.eval()(x), model(x))
