"""MobileNetV2 weights of torchvision, MMPretrain and the original TSM online demo load into
tsmnet's MobileNetV2(TSM), through the pure key mapping, ``load_pretrained`` and
``tsmnet convert``. Each layout is a synthetic checkpoint with exactly that layout's keys
(written out here from the layout's structure), its values taken from a tsmnet model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from parity import randomize

from tsmnet import MobileNetV2, MobileNetV2TSM
from tsmnet.weights.checkpoint import CheckpointMismatchError, load_pretrained
from tsmnet.weights.keymap import mobilenet_v2 as keymap

BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
# features.{i}, i = 1..17 -> (stage, block) of MMAction2's MobileNetV2
BLOCKS = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2), (4, 0), (4, 1), (4, 2), (4, 3),
          (5, 0), (5, 1), (5, 2), (6, 0), (6, 1), (6, 2), (7, 0)]


def _source_model(widen_factor: float = 1.0) -> MobileNetV2:
    model = MobileNetV2(widen_factor=widen_factor)
    randomize(model, seed=5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # every tensor distinct
    return model


def _conv_bn(sd: dict, module, conv: str, bn: str, bn_params=BN) -> None:
    sd[f'{conv}.weight'] = module.conv.weight
    for p in bn_params:
        sd[f'{bn}.{p}'] = getattr(module.bn, p)


def torchvision_layout(model: MobileNetV2, classes: int = 1000) -> dict:
    """torchvision.models.mobilenet_v2's keys: Conv2dNormActivation pairs `.0`/`.1`, the
    projection a bare conv then a BN, `features.18` the last conv, `classifier.1`."""
    sd: dict = {}
    _conv_bn(sd, model.conv1, 'features.0.0', 'features.0.1')
    for i, (stage, block) in enumerate(BLOCKS, 1):
        convs = getattr(model, f'layer{stage}')[block].conv
        for j, module in enumerate(convs[:-1]):
            _conv_bn(sd, module, f'features.{i}.conv.{j}.0', f'features.{i}.conv.{j}.1')
        last = len(convs) - 1
        _conv_bn(sd, convs[-1], f'features.{i}.conv.{last}', f'features.{i}.conv.{last + 1}')
    _conv_bn(sd, model.conv2, 'features.18.0', 'features.18.1')
    sd['classifier.1.weight'] = torch.randn(classes, model.out_channel)
    sd['classifier.1.bias'] = torch.randn(classes)
    return sd


def tsm_online_layout(model: MobileNetV2, classes: int = 27) -> dict:
    """The TSM online demo's keys: each block's `conv` one Sequential of conv, BN, ReLU6
    (no key) triples; `classifier` a Linear; written without num_batches_tracked, as older
    PyTorch did."""
    sd: dict = {}
    old_bn = BN[:4]
    _conv_bn(sd, model.conv1, 'features.0.0', 'features.0.1', old_bn)
    for i, (stage, block) in enumerate(BLOCKS, 1):
        for j, module in enumerate(getattr(model, f'layer{stage}')[block].conv):
            _conv_bn(sd, module, f'features.{i}.conv.{3 * j}', f'features.{i}.conv.{3 * j + 1}',
                     old_bn)
    _conv_bn(sd, model.conv2, 'features.18.0', 'features.18.1', old_bn)
    sd['classifier.weight'] = torch.randn(classes, model.out_channel)
    sd['classifier.bias'] = torch.randn(classes)
    return sd


def mmpretrain_layout(model: MobileNetV2) -> dict:
    """MMPretrain's ImageClassifier: the MMAction2 backbone keys under `backbone.`, and
    `head.fc` (LinearClsHead)."""
    sd = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    sd['head.fc.weight'] = torch.randn(1000, model.out_channel)
    sd['head.fc.bias'] = torch.randn(1000)
    return sd


def _assert_holds(target, source: MobileNetV2) -> None:
    """Every tensor of ``target`` is the one of ``source`` at the unwrapped key."""
    plain = source.state_dict()
    for key, value in target.state_dict().items():
        assert torch.equal(value, plain[key.replace('.net.', '.')]), key


def test_the_layouts_are_told_apart():
    model = _source_model()
    assert keymap.detect_layout(torchvision_layout(model)) == 'torchvision'
    assert keymap.detect_layout(tsm_online_layout(model)) == 'tsm-online'
    assert keymap.detect_layout(mmpretrain_layout(model)) == 'mmpretrain'
    assert keymap.detect_layout(model.state_dict()) == 'tsmnet'
    assert keymap.detect_layout({'conv1.weight': torch.zeros(1)}) is None  # a ResNet


def test_torchvision_mapping_is_a_bijection_onto_mmaction_keys():
    model = _source_model()
    mapped = keymap.torchvision_to_mobilenet_v2(torchvision_layout(model))
    assert set(mapped) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(mapped[key], value), key


@pytest.mark.parametrize('layout', ['torchvision', 'mmpretrain'])
@pytest.mark.parametrize('cls', [MobileNetV2, MobileNetV2TSM])
def test_imagenet_layouts_load_strictly(tmp_path, layout, cls):
    source = _source_model()
    sd = torchvision_layout(source) if layout == 'torchvision' else mmpretrain_layout(source)
    path = tmp_path / 'imagenet.pth'
    torch.save({'state_dict': sd} if layout == 'mmpretrain' else sd, path)
    model = cls(pretrained=str(path))
    model.init_weights()
    _assert_holds(model, source)
    report = load_pretrained(cls(), path, torchvision=True)
    assert report.complete and not report.new_modules
    assert sorted(report.skipped) == sorted(k for k in sd if 'classifier' in k or 'head.' in k)


def test_mmcls_loader_output_loads(tmp_path):
    """MMEngine's ``mmcls://`` loader keeps the ``backbone.`` keys without the prefix."""
    source = _source_model()
    path = tmp_path / 'bare.pth'
    torch.save({'state_dict': source.state_dict()}, path)
    model = MobileNetV2TSM(pretrained=str(path))
    model.init_weights()
    _assert_holds(model, source)


def test_other_widths_and_the_width_is_read_off_the_keys(tmp_path):
    from tsmnet.models.mobilenet_v2 import widen_factor_for

    for width in (0.5, 1.4):
        source = _source_model(width)
        channels = keymap.stage_channels(source.state_dict())
        assert widen_factor_for(channels) == width
        path = tmp_path / f'tv_{width}.pth'
        torch.save(torchvision_layout(source), path)
        model = MobileNetV2TSM(widen_factor=width, pretrained=str(path))
        model.init_weights()
        _assert_holds(model, source)


def test_tsm_online_layout_loads_into_the_causal_model(tmp_path):
    source = _source_model()
    sd = tsm_online_layout(source)
    mapped = keymap.tsm_online_to_mmaction(sd)
    model = MobileNetV2TSM(shift_mode='causal')
    backbone = {k[len('backbone.'):]: v for k, v in mapped.items() if k.startswith('backbone.')}
    assert set(backbone) == set(model.state_dict())  # the 10 shift sites take `.net`
    assert torch.equal(mapped['cls_head.fc_cls.weight'], sd['classifier.weight'])
    path = tmp_path / 'online.pth.tar'
    torch.save(sd, path)
    report = load_pretrained(model, path, torchvision=False)
    assert report.complete
    _assert_holds(model, source)


def test_wrong_widths_and_partial_files_are_refused(tmp_path):
    source = _source_model(0.5)
    path = tmp_path / 'half.pth'
    torch.save(torchvision_layout(source), path)
    with pytest.raises(CheckpointMismatchError, match='shape-mismatched keys'):
        load_pretrained(MobileNetV2TSM(), path, torchvision=True)
    sd = torchvision_layout(_source_model())
    del sd['features.5.conv.1.0.weight']
    torch.save(sd, path)
    with pytest.raises(CheckpointMismatchError, match=r'missing keys: layer3\.1\.conv\.1\.conv'):
        load_pretrained(MobileNetV2TSM(), path, torchvision=True)


def test_the_keymap_imports_no_models():
    """Its imports are the standard library and torch: no model, no checkpoint reader."""
    import ast

    tree = ast.parse(Path(keymap.__file__).read_text())
    imported = {n.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for n in node.names}
    imported |= {node.module or '' for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {'__future__', 're', 'collections.abc', 'torch'}, imported


def test_convert_command_for_each_layout(tmp_path, capsys):
    from tsmnet.cli import main

    source = _source_model()
    files = {'torchvision': torchvision_layout(source),
             'mmpretrain': {'state_dict': mmpretrain_layout(source)},
             'tsm': tsm_online_layout(source)}
    for name, content in files.items():
        src, dst = tmp_path / f'{name}.pth', tmp_path / f'{name}_tsmnet.pth'
        torch.save(content, src)
        assert main(['convert', str(src), str(dst), '--from', name]) == 0
        assert 'MobileNetV2 (widen_factor=1.0)' in capsys.readouterr().out
        saved = torch.load(dst, weights_only=True)
        causal = name == 'tsm'
        model = MobileNetV2TSM(shift_mode='causal' if causal else 'bidirectional',
                               pretrained=str(dst), pretrained2d=False)
        model.init_weights()
        _assert_holds(model, source)
        assert saved['meta']['arch']['widen_factor'] == 1.0
        assert ('cls_head.fc_cls.weight' in saved['state_dict']) == causal
    src = tmp_path / 'torchvision.pth'
    assert main(['convert', str(src), str(tmp_path / 'x.pth'), '--from', 'mmpretrain']) == 2
    assert 'not a mmpretrain MobileNetV2 checkpoint' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists()
