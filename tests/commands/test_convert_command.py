"""Converting checkpoint files (tsmnet.weights.conversion) and the ``tsmnet convert`` command, per
source layout: the result loads into tsmnet and MMAction2 alike."""

from __future__ import annotations

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_checkpoint
from state_dicts import NL_CFG, NL_R50, original_tsm_checkpoint, random_state_dict
from torch import nn

from tsmnet import ResNetTSM
from tsmnet.cli import main
from tsmnet.weights.checkpoint import load_pretrained, read_checkpoint
from tsmnet.weights.conversion import (
    convert_checkpoint,
)

# --- the original TSM release -------------------------------------------------------------

@pytest.mark.parametrize('depth, shift_place, temporal_pool, dropout', [
    (18, 'block', True, True), (18, 'blockres', False, False),
    pytest.param(101, 'blockres', False, True, marks=pytest.mark.slow)])
def test_tsm_release_converts_and_loads(tmp_path, shapes, depth, shift_place, temporal_pool,
                                        dropout):
    tv = random_state_dict(shapes[f'resnet{depth}'])
    src, dst = tmp_path / 'tsm.pth.tar', tmp_path / 'out.pth'
    torch.save(original_tsm_checkpoint(tv, shift_place=shift_place,
                                       temporal_pool=temporal_pool, dropout=dropout), src)
    assert main(['convert', str(src), str(dst), '--from', 'tsm', '--depth', str(depth)]) == 0
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['complete'] and ckpt['meta']['arch']['shift_place'] == shift_place
    model = ResNetTSM(depth, num_segments=4, shift_place=shift_place,
                      temporal_pool=temporal_pool)
    report = load_pretrained(model, dst, torchvision=False)
    assert report.complete and sorted(report.skipped) == ['cls_head.fc_cls.bias',
                                                  'cls_head.fc_cls.weight']
    direct = ResNetTSM(depth, num_segments=4, shift_place=shift_place,
                       temporal_pool=temporal_pool)
    assert load_pretrained(direct, src, torchvision=False).source_format == 'tsm'
    for key, value in direct.state_dict().items():  # the original file loads directly too
        assert torch.equal(value, model.state_dict()[key]), key
    layer2 = model.layer2.net if temporal_pool else model.layer2
    conv = layer2[0].net.conv1.conv if shift_place == 'block' else layer2[0].conv1.conv.net
    assert torch.equal(conv.weight, tv['layer2.0.conv1.weight'])
    if depth >= 101:  # blockres shifts every other block: layer2.1 is not wrapped
        assert torch.equal(layer2[1].conv1.conv.weight, tv['layer2.1.conv1.weight'])


@pytest.mark.slow
def test_tsm_release_non_local_round_trip_with_mmaction(tmp_path, shapes, mmaction_models):
    """Convert, load into tsmnet and into MMAction2's Recognizer2D: outputs are equal."""
    from mmaction.registry import MODELS

    tv = random_state_dict(shapes['resnet50'])
    original = original_tsm_checkpoint(tv, shift_place='blockres', non_local=True,
                                       num_classes=5)
    src = tmp_path / 'TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense_nl.pth'
    dst = tmp_path / 'tsm_r50_nl.pth'
    torch.save(original, src)
    assert main(['convert', str(src), str(dst), '--from', 'tsm']) == 0
    state = original['state_dict']

    num_segments = 4
    backbone_kwargs = dict(depth=50, num_segments=num_segments, non_local=NL_R50,
                           non_local_cfg=NL_CFG, pretrained=None)

    def recognizer(backbone: nn.Module) -> nn.Module:
        with DefaultScope.overwrite_default_scope('mmaction'):
            model = MODELS.build(dict(
                type='Recognizer2D',  # a light placeholder backbone, replaced below
                backbone=dict(type='tsmnet.ResNet', depth=18, num_stages=1, out_indices=(0,),
                              strides=(1,), dilations=(1,)),
                cls_head=dict(type='TSMHead', num_classes=5, in_channels=2048,
                              num_segments=num_segments, spatial_type='avg',
                              consensus=dict(type='AvgConsensus', dim=1), dropout_ratio=0.5,
                              is_shift=True, average_clips='prob')))
        model.backbone = backbone
        return model

    theirs = recognizer(mmaction_models.ResNetTSM(**backbone_kwargs))
    ours = recognizer(ResNetTSM(**backbone_kwargs))
    load_checkpoint(theirs, str(dst), strict=True)  # MMAction2 / MMEngine, no conversion
    load_checkpoint(ours, str(dst), strict=True)
    alone = ResNetTSM(**backbone_kwargs)
    assert load_pretrained(alone, dst, torchvision=False).complete  # tsmnet's own loader
    # the values come from the original file (bias of W.0 folded into W.1's running mean)
    nl = ours.backbone.layer3[2].non_local_block
    assert torch.equal(nl.theta.conv.weight, state['module.base_model.layer3.2.nl.theta.weight'])
    assert torch.equal(nl.conv_out.bn.running_mean,
                       state['module.base_model.layer3.2.nl.W.1.running_mean']
                       - state['module.base_model.layer3.2.nl.W.0.bias'])
    assert torch.equal(ours.cls_head.fc_cls.weight, state['module.new_fc.weight'])

    x = torch.randn(2, num_segments, 3, 32, 32)
    with torch.no_grad():
        outs = []
        for model in (theirs.eval(), ours.eval()):
            feats, kwargs = model.extract_feat(x, test_mode=True)
            outs.append((feats, model.cls_head(feats, **kwargs)))
        alone_feats = alone.eval()(x.flatten(0, 1))
    (ref_feats, ref_scores), (our_feats, our_scores) = outs
    assert ref_scores.shape == (2, 5)
    assert (ref_feats - our_feats).abs().max() <= 1e-5
    assert (ref_scores - our_scores).abs().max() <= 1e-5
    assert (alone_feats - our_feats).abs().max() == 0


# --- timm ---------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize('suffix', ['.safetensors', '.pth'])
def test_timm_files(tmp_path, shapes, suffix):
    from safetensors.torch import save_file

    weights = {k: v for k, v in random_state_dict(shapes['resnet18']).items()
               if not k.endswith('num_batches_tracked')}  # as timm's hub files may lack them
    src, dst = tmp_path / f'model{suffix}', tmp_path / 'out.pth'
    if suffix == '.safetensors':
        save_file(weights, str(src))
    else:
        torch.save(weights, src)
    model = ResNetTSM(18, num_segments=2)
    assert load_pretrained(model, src, torchvision=True).complete
    assert torch.equal(model.layer4[1].conv2.bn.running_var, weights['layer4.1.bn2.running_var'])
    assert main(['convert', str(src), str(dst), '--from', 'timm', '--shift-place', 'block']) == 0
    converted = ResNetTSM(18, num_segments=2, shift_place='block')
    assert load_pretrained(converted, dst, torchvision=False).complete
    assert torch.equal(converted.layer1[0].net.conv1.conv.weight, weights['layer1.0.conv1.weight'])


def test_timm_variant_refused_by_command(tmp_path, capsys):
    from safetensors.torch import save_file

    src = tmp_path / 'resnet50d.safetensors'
    save_file({'conv1.0.weight': torch.zeros(32, 3, 3, 3), 'conv1.1.weight': torch.zeros(32)},
              str(src))
    assert main(['convert', str(src), str(tmp_path / 'out.pth'), '--from', 'timm']) == 2
    assert 'deep stem' in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()


# --- torchvision and MMAction2 through the command ----------------------------------------

def test_command_refuses_partial_and_allow_partial_writes(tmp_path, shapes, capsys):
    tv = random_state_dict(shapes['resnet18'])
    del tv['layer3.1.conv1.weight']
    tv['layer1.0.bn2.bias'] = torch.zeros(7)
    tv['extra.weight'] = torch.zeros(1)
    src, dst = tmp_path / 'tv.pth', tmp_path / 'out.pth'
    torch.save(tv, src)
    assert main(['convert', str(src), str(dst), '--from', 'torchvision']) == 2  # bad input: exit 2
    out, err = capsys.readouterr()
    assert 'missing: 1\n  layer3.1.conv1.conv.net.weight' in out
    assert 'unexpected: 1\n  extra.weight' in out
    assert 'shape-mismatched: 1\n  layer1.0.conv2.bn.bias: checkpoint (7,), model (64,)' in out
    assert 'partial; nothing written' in err and not dst.exists()
    assert main(['convert', str(src), str(dst), '--from', 'torchvision', '--allow-partial']) == 0
    assert 'PARTIAL' in capsys.readouterr().out
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['complete'] is False
    assert 'backbone.layer3.1.conv1.conv.net.weight' not in ckpt['state_dict']
    assert 'backbone.layer3.1.conv1.bn.weight' in ckpt['state_dict']


def test_command_flow_inflation_and_errors(tmp_path, shapes, capsys):
    tv = random_state_dict(shapes['resnet18'])
    src, dst = tmp_path / 'tv.pth', tmp_path / 'flow.pth'
    torch.save(tv, src)
    assert main(['convert', str(src), str(dst), '--from', 'torchvision', '--in-channels', '2',
                 '--temporal-pool']) == 0
    assert 'inflated to 2 input channels: conv1.conv.weight' in capsys.readouterr().out
    model = ResNetTSM(18, num_segments=4, in_channels=2, temporal_pool=True)
    assert load_pretrained(model, dst, torchvision=False).complete
    assert torch.allclose(model.conv1.conv.weight[:, 1], tv['conv1.weight'].mean(dim=1))
    for argv, message in (
            (['--from', 'tsm'], 'is not a tsm checkpoint: its keys look like the torchvision'),
            (['--from', 'torchvision', '--depth', '50'], 'holds a ResNet-18, not the ResNet-50')):
        assert main(['convert', str(src), str(tmp_path / 'x.pth'), *argv]) == 2
        assert message in capsys.readouterr().err
    missing = tmp_path / 'missing.pth'
    assert main(['convert', str(missing), str(dst), '--from', 'torchvision']) == 2
    assert f'checkpoint file not found: {missing}' in capsys.readouterr().err


def test_command_refuses_malicious_pickle(tmp_path, capsys):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    src = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'backbone.conv1.conv.weight': torch.zeros(1)}, 'x': Payload()},
               src)
    assert main(['convert', str(src), str(tmp_path / 'out.pth'), '--from', 'mmaction']) == 2
    err = capsys.readouterr().err
    assert f'refused to load checkpoint {src}' in err
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()


def test_mmaction_checkpoint_with_message_hub(tmp_path, capsys):
    """An MMEngine checkpoint (DDP-prefixed keys, message hub) converts to the same weights."""
    model = ResNetTSM(18, num_segments=2, shift_place='block')
    hub = MessageHub.get_instance('tsmnet-convert-test')
    hub.update_scalar('train/loss', 0.25)
    hub.update_info('eta', torch.tensor(1.0).numpy().astype('float64')[()])
    state = {f'module.backbone.{k}': v for k, v in model.state_dict().items()}
    state['module.cls_head.fc_cls.weight'] = torch.randn(7, 512)
    state['module.cls_head.fc_cls.bias'] = torch.randn(7)
    src, dst = tmp_path / 'epoch_3.pth', tmp_path / 'out.pth'
    torch.save({'meta': {'epoch': 3}, 'state_dict': state, 'message_hub': hub.state_dict(),
                'optimizer': {'state': {}, 'param_groups': []}}, src)
    assert main(['convert', str(src), str(dst), '--from', 'mmaction']) == 0
    assert 'converted: 120 backbone keys, 2 head keys' in capsys.readouterr().out
    written = read_checkpoint(dst)['state_dict']
    assert written.keys() == {k[len('module.'):] for k in state}
    for key, value in written.items():
        assert torch.equal(value, state[f'module.{key}'])
    # a head that does not fit the backbone is reported
    state['module.cls_head.fc_cls.weight'] = torch.randn(7, 2048)
    torch.save({'state_dict': state}, src)
    assert main(['convert', str(src), str(dst), '--from', 'mmaction']) == 2
    assert 'cls_head.fc_cls.weight: checkpoint (7, 2048), model (7, 512)' in \
        capsys.readouterr().out


@pytest.mark.slow
def test_converted_torchvision_loads_in_both_backbones(tmp_path, shapes, mmaction_models):
    """MMAction2's own ResNetTSM (init_cfg Pretrained, prefix 'backbone.') and tsmnet's
    (pretrained=DST) load the converted file to the same weights."""
    tv = random_state_dict(shapes['resnet18'])
    src, dst = tmp_path / 'resnet18.pth', tmp_path / 'tsm_r18.pth'
    torch.save(tv, src)
    assert main(['convert', str(src), str(dst), '--from', 'torchvision']) == 0
    theirs = mmaction_models.ResNetTSM(18, num_segments=4, pretrained2d=False, init_cfg=dict(
        type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    theirs.init_weights()
    ours = ResNetTSM(18, num_segments=4, pretrained=str(dst))
    ours.init_weights()
    written = torch.load(dst, weights_only=True)['state_dict']
    assert len(written) == len(ours.state_dict()) == 120
    for key, value in ours.state_dict().items():
        assert torch.equal(value, written[f'backbone.{key}']), key
        assert torch.equal(value, theirs.state_dict()[key]), key
    assert torch.equal(ours.layer1[0].conv1.conv.net.weight, tv['layer1.0.conv1.weight'])


# --- num_batches_tracked: every layout fills what the file lacks ----------------------------

def _untracked(source_format: str, shapes) -> dict:
    """An R18 checkpoint of ``source_format`` whose BN layers lack ``num_batches_tracked``
    (saved by PyTorch < 0.4.1, or filtered by a script)."""
    tv = random_state_dict(shapes['resnet18'])
    if source_format in ('torchvision', 'timm'):
        state = tv
    elif source_format == 'tsm':
        state = original_tsm_checkpoint(tv, shift_place='blockres')['state_dict']
    else:  # mmaction: a recognizer checkpoint as MMEngine saves it
        state = {f'backbone.{k}': v for k, v in
                 ResNetTSM(18, num_segments=8, pretrained=None).state_dict().items()}
    return {k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}


@pytest.mark.slow
@pytest.mark.parametrize('source_format', ['torchvision', 'timm', 'tsm', 'mmaction'])
def test_every_layout_fills_num_batches_tracked(tmp_path, shapes, source_format, capsys):
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save(_untracked(source_format, shapes), src)
    bns = [k for k in ResNetTSM(18, num_segments=8).state_dict()
           if k.endswith('num_batches_tracked')]
    # the library conversion: complete, and the buffers reported as filled, not missing
    conversion = convert_checkpoint(src, source_format)
    assert conversion.complete, conversion.summary()
    assert sorted(conversion.report.filled) == sorted(bns)
    assert not conversion.report.missing
    assert all(conversion.state_dict[f'backbone.{k}'].item() == 0 for k in bns)
    # the command writes it
    assert main(['convert', str(src), str(dst), '--from', source_format]) == 0
    assert f'filled with 0 (num_batches_tracked the file lacks): {len(bns)}' in \
        capsys.readouterr().out
    # and loading the file directly reports the same
    model = ResNetTSM(18, num_segments=8)
    report = load_pretrained(model, src, torchvision=source_format in ('torchvision', 'timm'))
    assert report.complete and sorted(report.filled) == sorted(bns)
    assert 'num_batches_tracked buffers the file lacks' in report.describe()


def test_the_command_names_the_library_choices():
    """convert names its choices without importing torch (a fast --help); they are the
    library's."""
    from tsmnet.commands.convert import FORMATS, SHIFT_PLACES
    from tsmnet.models.resnet_tsm import SHIFT_PLACES as LIBRARY_PLACES
    from tsmnet.weights.conversion import MOBILENET_V2_FORMATS
    from tsmnet.weights.keymap import SOURCE_FORMATS

    assert FORMATS == SOURCE_FORMATS + MOBILENET_V2_FORMATS
    assert SHIFT_PLACES == LIBRARY_PLACES
