"""The named weights: every TSM ResNet/MobileNetV2 checkpoint MMAction2 1.2.0 publishes is an
entry whose URL, figures, architecture and test protocol are those of the wheel's metafile and
configs; create_model / list_models / tsmnet.weights; bad input."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

import tsmnet
from tsmnet.models.factory import build_recognizer
from tsmnet.video import TestProtocol
from tsmnet.weights.checkpoint import CheckpointMismatchError
from tsmnet.weights.zoo import ENTRIES, UnknownModelError, WeightsEntry

MBV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'
R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
R101_SSV2 = 'tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb'
MOBILEONE = 'tsm_imagenet-pretrained-mobileone-s4_8xb16-1x1x16-50e_kinetics400-rgb'
MOBILEONE_DEPLOY = 'tsm_imagenet-pretrained-mobileone-s4_deploy_8xb16-1x1x16-50e_kinetics400-rgb'


def _tsm_configs() -> Path:
    spec = importlib.util.find_spec('mmaction')
    if spec is None:
        pytest.skip('MMAction2 is not installed (pip install -e ".[mmaction]")')
    return Path(spec.origin).parent / '.mim' / 'configs' / 'recognition' / 'tsm'


def _metafile_models() -> list[dict]:
    import yaml

    return yaml.safe_load((_tsm_configs() / 'metafile.yml').read_text())['Models']


def test_every_published_checkpoint_is_an_entry():
    models = _metafile_models()
    urls = {m['Weights'] for m in models}
    # the metafile lists the MobileNetV2 figures under the R101 name and URL (a duplicate);
    # the MobileNetV2 URL is in MMAction2's README; MobileOne-S4's deploy twin shares its URL
    assert urls == {e.url for e in ENTRIES.values()} - {ENTRIES[MBV2].url}
    assert len(ENTRIES) == len(urls) + 2 == 13
    assert ENTRIES[MOBILEONE_DEPLOY].url == ENTRIES[MOBILEONE].url
    for model in models:
        arch = model['Metadata']['Architecture']
        entry = ENTRIES.get(model['Name'])
        if entry is None or (arch == 'MobileNetV2') != (entry.backbone == 'MobileNetV2TSM'):
            continue  # the mislabelled duplicate
        metrics = model['Results'][0]['Metrics']
        assert entry.url == model['Weights']
        assert (entry.top1, entry.top5) == (metrics['Top 1 Accuracy'], metrics['Top 5 Accuracy'])
        assert entry.name == Path(model['Config']).name.removesuffix('.py')
    # the mislabelled copy: MobileNetV2's metadata, the R101 SSv2 entry's name, URL, figures
    copy, r101 = [m for m in models if m['Name'] == R101_SSV2]
    assert copy['Metadata']['Architecture'] == 'MobileNetV2'
    assert copy['Weights'] == r101['Weights']
    assert copy['Results'][0]['Metrics'] == r101['Results'][0]['Metrics']
    assert ENTRIES[MBV2].source.startswith('mmaction2 1.2.0, configs/recognition/tsm/README.md')


def _protocol_of_config(cfg) -> TestProtocol:
    """The test protocol read off a config's test pipeline, data preprocessor and head."""
    steps = {step['type']: step for step in cfg.test_pipeline}
    sample = steps.get('SampleFrames') or steps['DenseSampleFrames']
    crop_type = next(t for t in ('CenterCrop', 'ThreeCrop', 'TenCrop') if t in steps)
    scale = steps['Resize']['scale']
    assert scale[0] == -1
    return TestProtocol(
        num_clips=sample['num_clips'], clip_len=sample['clip_len'],
        frame_interval=sample['frame_interval'], twice_sample=sample.get('twice_sample', False),
        dense='DenseSampleFrames' in steps,
        num_test_clips=sample.get('num_sample_positions', 10) if 'DenseSampleFrames' in steps
        else 1,
        resize_short=scale[1], crop={'CenterCrop': 'center', 'ThreeCrop': 'three',
                                     'TenCrop': 'ten'}[crop_type],
        crop_size=steps[crop_type]['crop_size'],
        mean=tuple(cfg.model.data_preprocessor.mean), std=tuple(cfg.model.data_preprocessor.std),
        average_clips=cfg.model.cls_head.average_clips)


@pytest.mark.parametrize('name', sorted(ENTRIES))
def test_entry_is_its_config(name):
    from mmengine.config import Config

    entry = ENTRIES[name]
    cfg = Config.fromfile(_tsm_configs() / f'{name}.py')
    backbone = cfg.model.backbone.to_dict()
    backbone.pop('pretrained', None)  # MobileOneTSM's: init_cfg (its ImageNet checkpoint)
    backbone.pop('init_cfg', None)
    if backbone['type'] == 'ResNetTSM':
        backbone.setdefault('num_segments', 8)  # the entries state the default
    head = cfg.model.cls_head.to_dict()
    head.setdefault('num_segments', 8)
    assert entry.architecture == {'backbone': backbone, 'cls_head': head}
    assert entry.protocol == _protocol_of_config(cfg)
    protocol = entry.protocol
    # MobileOne-S4's head has T=16, its backbone num_segments=8 (the base config's)
    assert entry.num_segments == head['num_segments'] == protocol.num_clips * protocol.clip_len
    assert entry.mean == tuple(cfg.model.data_preprocessor.mean)
    assert entry.url.endswith(f'-{entry.sha256}.pth') and len(entry.sha256) == 8
    assert len(entry.labels) == entry.num_classes


@pytest.mark.parametrize('name', sorted(ENTRIES))
def test_state_dict_is_mmaction_recognizer2d(mmaction_models, name):
    """Keys and shapes of every entry's model equal MMAction2's Recognizer2D built from the
    config, so its released checkpoint loads strictly (built on the meta device: no
    weights are allocated)."""
    from mmengine.config import Config

    cfg = Config.fromfile(_tsm_configs() / f'{name}.py').model
    if cfg.backbone.type == 'MobileOneTSM':
        from mmpretrain_standin import import_reference_mobileone

        try:
            backbone_cls = import_reference_mobileone()[1]
        except ImportError as err:
            pytest.skip(f'MMPretrain does not import here ({err})')
        cfg.backbone.pop('init_cfg')
    else:
        cfg.backbone.pretrained = None
        backbone_cls = getattr(mmaction_models, cfg.backbone.type)  # MMAction2's own
    cfg.backbone.pop('type')
    with torch.device('meta'), DefaultScope.overwrite_default_scope('mmaction'):
        ref = mmaction_models.Recognizer2D(backbone=dict(type='ResNet', depth=18),
                                           cls_head=cfg.cls_head)
        ref.backbone = backbone_cls(**cfg.backbone)
        ours = build_recognizer(ENTRIES[name])
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}


def test_labels():
    k400, ssv2 = ENTRIES[R50].labels, ENTRIES['tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_'
                                              'sthv2-rgb'].labels
    assert len(k400) == len(set(k400)) == 400 and len(ssv2) == len(set(ssv2)) == 174
    assert (k400[0], k400[-1]) == ('abseiling', 'zumba')
    assert ssv2[0] == 'Approaching something with your camera'
    assert ENTRIES[R50].meta['categories'] == list(k400)


def test_weights_lookup_and_list_models():
    assert isinstance(tsmnet.get_weights(R50), WeightsEntry)
    assert tsmnet.get_weights(R50) is ENTRIES[R50] is tsmnet.weights.get_weights(R50)
    assert tsmnet.list_models() == sorted(ENTRIES)
    assert tsmnet.list_models(pretrained=True) == sorted(ENTRIES)
    assert tsmnet.list_models(pretrained=False) == []
    assert tsmnet.list_models('*sthv2*') == sorted(n for n in ENTRIES if 'sthv2' in n)
    assert tsmnet.list_models('mobilenetv2') == [MBV2]
    # the package is a plain package: calling it is the TypeError of any module
    import tsmnet.weights.zoo as zoo

    assert tsmnet.weights.zoo is zoo and type(tsmnet.weights) is types.ModuleType
    with pytest.raises(TypeError, match="'module' object is not callable"):
        tsmnet.weights(R50)


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError, match=f"did you mean '{R50}'"):
        tsmnet.get_weights(R50.replace('kinetics', 'kinetic'))
    with pytest.raises(UnknownModelError, match="unknown model name 'tsm_r50_kinetics400'.*r50"):
        tsmnet.create_model('tsm_r50_kinetics400')


def _mmaction_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    torch.save({'meta': {'mmengine_version': '0.10.7', 'epoch': 100, 'iter': 2000, 'seed': 0,
                         'dataset_meta': None}, 'state_dict': model.state_dict()}, path)
    return path


def test_create_model_from_local_checkpoint(tmp_path):
    source = tsmnet.create_model(MBV2, num_segments=2)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = _mmaction_checkpoint(source, tmp_path / 'mbv2.pth')
    model = tsmnet.create_model(MBV2, pretrained=path, num_segments=2)
    assert model.pretrained_cfg is ENTRIES[MBV2]
    for (k, a), b in zip(source.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    clip = torch.randn(1, 2, 3, 64, 64)
    assert torch.equal(source.eval()(clip), model.eval()(clip))
    # another number of classes: the backbone of the checkpoint, a new head
    tuned = tsmnet.create_model(MBV2, pretrained=str(path), num_segments=2, num_classes=3)
    assert tuned.cls_head.fc_cls.out_features == 3
    assert torch.equal(tuned.backbone.conv1.conv.weight, source.backbone.conv1.conv.weight)
    # a checkpoint of another architecture is refused, naming keys
    with pytest.raises(CheckpointMismatchError, match='backbone'):
        tsmnet.create_model(R50, pretrained=path)


def test_create_model_arguments():
    model = tsmnet.create_model(MBV2, num_segments=4, dropout_ratio=0.0, shift_mode='causal',
                                average_clips='score', max_views=2)
    assert model.max_views == 2
    assert model.num_segments == model.backbone.num_segments == 4
    assert model.cls_head.dropout is None and model.cls_head.average_clips == 'score'
    assert model.backbone.shift_mode == 'causal' and model.training


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(num_classes=0), ValueError, 'num_classes'),
    (dict(num_classes=2.5), ValueError, 'num_classes'),
    (dict(pretrained=3), TypeError, 'pretrained'),
    (dict(pretrained='/nonexistent/file.pth'), FileNotFoundError, 'pretrained'),
    (dict(colour='red'), TypeError, "'colour'"),
    (dict(in_channels=3), TypeError, 'in_channels'),
])
def test_create_model_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tsmnet.create_model(MBV2, **kwargs)


def test_transforms_are_the_video_pipeline():
    if not hasattr(tsmnet.video, 'VideoTransform'):
        pytest.skip('tsmnet.video has no VideoTransform yet (the video branch brings it)')
    transform = ENTRIES[MBV2].transforms()
    assert isinstance(transform, tsmnet.video.VideoTransform)
    assert transform.protocol == ENTRIES[MBV2].protocol


@pytest.mark.slow
def test_mobileone_entries_load_a_released_layout_checkpoint(tmp_path):
    """A synthetic checkpoint in the released layout (MMAction2's training form, head T=16,
    backbone num_segments=8) loads strictly into both names; the deploy twin folds it and
    gives the same scores; the deploy form exports to ONNX."""
    source = tsmnet.create_model(MOBILEONE).eval()
    assert (source.num_segments, source.backbone.num_segments) == (16, 8)
    from parity import randomize

    randomize(source)
    path = _mmaction_checkpoint(source, tmp_path / 'mobileone.pth')
    model = tsmnet.create_model(MOBILEONE, pretrained=path).eval()
    deployed = tsmnet.create_model(MOBILEONE_DEPLOY, pretrained=path).eval()
    assert deployed.backbone.deploy and 'backbone.stage0.net.branch_reparam.weight' in \
        deployed.state_dict()
    clip = torch.randn(1, 16, 3, 64, 64)
    with torch.no_grad():
        expected = source(clip)
        torch.testing.assert_close(model(clip), expected, rtol=0, atol=0)
        torch.testing.assert_close(deployed(clip), expected, rtol=1e-4, atol=1e-5)
    # a deploy-form checkpoint loads into the deploy name as it is
    again = _mmaction_checkpoint(deployed, tmp_path / 'deployed.pth')
    assert tsmnet.create_model(MOBILEONE_DEPLOY, pretrained=again).backbone.deploy
