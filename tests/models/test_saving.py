"""Self-describing models: ``Recognizer.architecture()``, ``tsmnet.save`` / ``tsmnet.load`` (a
``.pth`` in MMAction2's layout and a safetensors folder), ``create_model(pretrained=path)``
without a name, the zoo entries' descriptions, older ``tsmnet finetune`` checkpoints, and
nothing trained dropped silently."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import tsmnet
from tsmnet import Recognizer
from tsmnet.models.architecture import is_description
from tsmnet.models.factory import build_recognizer
from tsmnet.video import TestProtocol
from tsmnet.weights.checkpoint import CheckpointMismatchError
from tsmnet.weights.saved import CONFIG_FILE, WEIGHTS_FILE, read_saved
from tsmnet.weights.zoo import ENTRIES

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
MBV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'
NL = 'tsm_imagenet-pretrained-r50-nl-embedded-gaussian_8xb16-1x1x8-50e_kinetics400-rgb'
T = 4
CLASSES = ['jump', 'run', 'wave']


def _tiny(**kwargs) -> Recognizer:
    """A causal ResNet-18 TSM of T=4 frames and three classes, with random weights."""
    torch.manual_seed(0)
    model = tsmnet.create_model(R50, depth=18, num_segments=T, num_classes=3,
                                shift_mode='causal', **kwargs)
    with torch.no_grad():  # a head that is not near zero, so that outputs differ
        model.cls_head.fc_cls.weight.normal_(0, 0.1)
    return model.eval()


def _clips(n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.randn(n, T, 3, size, size, generator=torch.Generator().manual_seed(1))


def _normalised(value):
    """Tuples as lists and mappings as dicts, as a description holds them."""
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    if hasattr(value, 'items'):
        return {k: _normalised(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize('name', ['model.pth', 'folder'])
def test_save_load_round_trip(tmp_path, name):
    model = _tiny()
    protocol = TestProtocol(num_clips=T, crop='center', crop_size=32, resize_short=40)
    written = tsmnet.save(model, tmp_path / name, classes=CLASSES, protocol=protocol)
    loaded = tsmnet.load(written)
    assert not loaded.training
    assert loaded.architecture() == model.architecture()
    assert loaded.backbone.shift_mode == 'causal' and loaded.backbone.depth == 18
    assert loaded.class_names == CLASSES and loaded.protocol == protocol
    assert loaded.pretrained_cfg is ENTRIES[R50]
    with torch.no_grad():
        assert torch.equal(loaded(_clips()), model(_clips()))
    # create_model without a name is the same model, in train mode
    again = tsmnet.create_model(pretrained=written)
    assert again.training and again.architecture() == model.architecture()


def test_folder_form(tmp_path):
    model = _tiny()
    tsmnet.save(model, tmp_path / 'out', classes=CLASSES)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    config = json.loads((tmp_path / 'out' / CONFIG_FILE).read_text())
    assert config['architecture'] == model.architecture()  # JSON keeps the description whole
    assert config['class_names'] == CLASSES and config['model'] == R50
    from safetensors.torch import load_file

    weights = load_file(tmp_path / 'out' / WEIGHTS_FILE)
    assert weights.keys() == model.state_dict().keys()


def test_pth_is_mmaction_layout(tmp_path):
    model = _tiny()
    tsmnet.save(model, tmp_path / 'm.pth', classes=CLASSES, meta={'epoch': 3})
    obj = torch.load(tmp_path / 'm.pth', weights_only=True)
    assert set(obj) == {'state_dict', 'meta'}
    assert obj['state_dict'].keys() == model.state_dict().keys()
    assert obj['meta']['epoch'] == 3 and obj['meta']['classes'] == CLASSES
    assert obj['meta']['tsmnet']['architecture'] == model.architecture()
    assert obj['meta']['tsmnet']['version'] == tsmnet.__version__


@pytest.mark.slow  # builds MMAction2's Recognizer2D
def test_saved_description_builds_in_mmaction(tmp_path, mmaction_models):
    """The description is an MMAction2 model config: Recognizer2D built from it loads the
    file with MMEngine's strict ``load_checkpoint`` and gives the same scores."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    model = _tiny()
    tsmnet.save(model, tmp_path / 'm.pth')
    arch = read_saved(tmp_path / 'm.pth')[1].architecture
    with DefaultScope.overwrite_default_scope('mmaction'):
        ref = mmaction_models.Recognizer2D(backbone=arch['backbone'],
                                           cls_head=arch['cls_head'])
    load_checkpoint(ref, str(tmp_path / 'm.pth'), strict=True)
    ref.eval()
    with torch.no_grad():
        expected = ref(_clips(), mode='tensor', stage='head')
        assert torch.allclose(expected, model(_clips()), atol=1e-5)


@pytest.mark.quick_only(R50)
@pytest.mark.parametrize('name', sorted(ENTRIES))
def test_zoo_entries_are_descriptions(name):
    """A zoo model describes itself as its entry (and more defaults), and the description
    rebuilds the same network."""
    entry = ENTRIES[name]
    model = build_recognizer(entry)
    arch = model.architecture()
    assert is_description(arch)
    for part in ('backbone', 'cls_head'):
        expected = _normalised(entry.architecture[part])
        assert {k: arch[part][k] for k in expected} == expected
    rebuilt = Recognizer(architecture=json.loads(json.dumps(arch)))
    assert rebuilt.architecture() == arch
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}


def test_non_local_and_mobilenet_round_trip(tmp_path):
    for name, kwargs in ((NL, dict(num_segments=T)), (MBV2, dict(num_segments=T))):
        model = tsmnet.create_model(name, num_classes=5, **kwargs).eval()
        tsmnet.save(model, tmp_path / 'f')
        loaded = tsmnet.load(tmp_path / 'f')
        assert type(loaded.backbone) is type(model.backbone)
        with torch.no_grad():
            assert torch.equal(loaded(_clips()), model(_clips()))


def test_named_model_loads_finetuned_head(tmp_path):
    """The issue's case: create_model(name, pretrained=ft, num_classes=3, depth=18) loads the
    trained head (it used to start a random one, with one INFO line)."""
    model = _tiny()
    tsmnet.save(model, tmp_path / 'ft.pth')
    named = tsmnet.create_model(R50, pretrained=tmp_path / 'ft.pth', num_classes=3, depth=18,
                                num_segments=T, shift_mode='causal').eval()
    with torch.no_grad():
        assert torch.equal(named(_clips()), model(_clips()))


def test_head_that_does_not_fit_is_an_error(tmp_path):
    tsmnet.save(_tiny(), tmp_path / 'ft.pth')
    with pytest.raises(CheckpointMismatchError, match=r'head of 3 classes.*num_classes=3'):
        tsmnet.create_model(R50, pretrained=tmp_path / 'ft.pth', depth=18, num_segments=T)
    # the backbone does not fit either: the error says the file describes its own model
    with pytest.raises(CheckpointMismatchError, match=r'tsmnet\.load'):
        tsmnet.create_model(R50, pretrained=tmp_path / 'ft.pth', num_classes=3)


def test_new_head_is_warned(tmp_path):
    model = _tiny()
    tsmnet.save(model, tmp_path / 'ft.pth', classes=CLASSES)
    with pytest.warns(UserWarning, match=r'head of 3 classes; num_classes=5 asks for a new'):
        tuned = tsmnet.load(tmp_path / 'ft.pth', num_classes=5)
    assert tuned.num_classes == 5 and tuned.class_names is None
    backbone = {k: v for k, v in model.state_dict().items() if k.startswith('backbone.')}
    for key, value in backbone.items():
        assert torch.equal(tuned.state_dict()[key], value), key
    with warnings.catch_warnings():  # the same classes: no warning
        warnings.simplefilter('error')
        tsmnet.load(tmp_path / 'ft.pth', num_classes=3)


def test_checkpoint_without_description(tmp_path):
    torch.save(_tiny().state_dict(), tmp_path / 'bare.pth')
    with pytest.raises(ValueError, match='does not describe its architecture'):
        tsmnet.load(tmp_path / 'bare.pth')
    with pytest.raises(TypeError, match='needs a model name'):
        tsmnet.create_model()
    with pytest.raises(FileNotFoundError, match='not found'):
        tsmnet.load(tmp_path / 'missing.pth')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no model.safetensors'):
        tsmnet.load(tmp_path / 'empty')


def test_older_finetune_checkpoint(tmp_path):
    """Before self-describing checkpoints, tsmnet finetune wrote the zoo name and the changes
    (depth, shift mode) and a partial protocol: they still load."""
    model = _tiny()
    meta = {'classes': CLASSES, 'model': R50, 'num_segments': T,
            'config': {'dropout': None},
            'tsmnet': {'architecture': {'depth': 18, 'shift_mode': 'causal'},
                       'protocol': {'resize_short': 36, 'crop_size': 32, 'crop': 'center',
                                    'twice_sample': False, 'dense': False}}}
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, tmp_path / 'old.pth')
    # the old meta has no T: the entry's 8; T=4 is given as an override
    loaded = tsmnet.load(tmp_path / 'old.pth', num_segments=T)
    assert loaded.backbone.shift_mode == 'causal' and loaded.num_classes == 3
    assert loaded.class_names == CLASSES
    assert loaded.protocol.crop_size == 32 and loaded.protocol.mean == ENTRIES[R50].mean
    with torch.no_grad():
        assert torch.equal(loaded(_clips()), model(_clips()))


def test_recognizer_from_architecture_and_deprecated_from_pretrained(tmp_path):
    model = _tiny()
    built = Recognizer(architecture=model.architecture(), class_names=CLASSES,
                       protocol={'crop_size': 32, 'resize_short': 36})
    assert built.architecture() == model.architecture()
    assert built.class_names == CLASSES and built.protocol.crop_size == 32
    with pytest.raises(TypeError, match='not both'):
        Recognizer(model.backbone, model.cls_head, architecture=model.architecture())
    with pytest.raises(ValueError, match='2 names for a head of 3'):
        built.class_names = ['a', 'b']
    torch.save(model.state_dict(), tmp_path / 'sd.pth')
    parts = build_recognizer(model.architecture())
    loaded = Recognizer.from_parts(parts.backbone, parts.cls_head, tmp_path / 'sd.pth').eval()
    with pytest.deprecated_call(match='from_parts'):
        old = Recognizer.from_pretrained(parts.backbone, parts.cls_head, tmp_path / 'sd.pth')
    with torch.no_grad():
        assert torch.equal(loaded(_clips()), model(_clips()))
        assert torch.equal(old.eval()(_clips()), model(_clips()))
    with pytest.raises(TypeError, match='tsmnet.load'):
        Recognizer.from_pretrained(str(tmp_path / 'sd.pth'))


def test_save_bad_input(tmp_path):
    model = _tiny()
    with pytest.raises(TypeError, match='must be a tsmnet Recognizer'):
        tsmnet.save(model.backbone, tmp_path / 'x.pth')
    with pytest.raises(ValueError, match='2 class names for a head of 3'):
        tsmnet.save(model, tmp_path / 'x.pth', classes=['a', 'b'])
    with pytest.raises(ValueError, match='format must be'):
        tsmnet.save(model, tmp_path / 'x.pth', format='onnx')


def test_hugging_face_mixin_round_trip(tmp_path):
    """A ``PyTorchModelHubMixin`` subclass of Recognizer saves and loads itself (its config is
    the ``architecture``, ``class_names`` and ``protocol`` arguments), reads a folder of
    ``tsmnet.save``, and ``tsmnet.load`` reads its folder."""
    hub = pytest.importorskip('huggingface_hub')

    class HubRecognizer(Recognizer, hub.PyTorchModelHubMixin):
        pass

    model = _tiny()
    wrapped = HubRecognizer(architecture=model.architecture(), class_names=CLASSES,
                            protocol={'crop_size': 32, 'resize_short': 36})
    wrapped.load_state_dict(model.state_dict())
    wrapped.save_pretrained(tmp_path / 'hub')
    again = HubRecognizer.from_pretrained(tmp_path / 'hub').eval()
    loaded = tsmnet.load(tmp_path / 'hub')
    tsmnet.save(model, tmp_path / 'ours', classes=CLASSES)
    ours = HubRecognizer.from_pretrained(tmp_path / 'ours').eval()
    with torch.no_grad():
        expected = model(_clips())
        for other in (again, loaded, ours):
            assert torch.equal(other(_clips()), expected)
            assert other.class_names == CLASSES
    assert again.protocol.crop_size == 32 and loaded.protocol.crop_size == 32
