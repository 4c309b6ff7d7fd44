"""Key conversion per source (tsmnet.convert) and the ``tsmnet convert`` command.

The synthetic files are built here in the exact layout of each source; the original TSM
release's layout (mit-han-lab/temporal-shift-module: a DataParallel TSN whose base_model is a
torchvision ResNet with wrappers) is written out by ``original_tsm_checkpoint`` below.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_checkpoint
from torch import nn

from tsmnet import ResNetTSM
from tsmnet.checkpoint import load_pretrained, read_checkpoint
from tsmnet.cli import main
from tsmnet.convert import (
    convert_checkpoint,
    detect_format,
    fold_conv_bias_into_bn,
    infer_arch,
    inflate_conv1_weight,
    timm_to_resnet,
    torchvision_to_resnet,
    tsm_to_mmaction,
)

REFERENCE = Path(__file__).parent / 'data' / 'torchvision_resnet_state_dict_shapes.json.gz'
NL_CFG = dict(sub_sample=True, use_scale=False, norm_cfg=dict(type='BN3d', requires_grad=True),
              mode='embedded_gaussian')
# the original release's non-local placement (ops/non_local.py): layer2 blocks 0 and 2,
# layer3 blocks 0, 2 and 4 of a ResNet-50
NL_R50 = ((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0))


@pytest.fixture(scope='module')
def shapes() -> dict[str, dict[str, list[int]]]:
    return json.loads(gzip.decompress(REFERENCE.read_bytes()))['models']


def random_state_dict(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if not shape:
            out[key] = torch.tensor(3)
        elif key.endswith('running_var'):
            out[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            out[key] = torch.randn(shape, generator=gen) * 0.05
    return out


def original_tsm_checkpoint(torchvision: dict[str, torch.Tensor], *, shift_place: str,
                            non_local: bool = False, temporal_pool: bool = False,
                            num_classes: int = 5, dropout: bool = True) -> dict:
    """The dict that the original release's main.py saves, for a TSN over ``torchvision``.

    Its TSN wraps torchvision's ResNet: ``make_temporal_shift`` wraps ``conv1`` of every
    (every other, for 23+ blocks in layer3) block in ``TemporalShift`` (``.net``) for
    'blockres', or the whole block for 'block'; ``make_non_local`` wraps layer2[0,2] and
    layer3[0,2,4] in ``NL3DWrapper`` (``.block`` + ``.nl``, a NONLocalBlock3D with
    sub-sampling and BN); ``make_temporal_pool`` wraps layer2 (``.net``); with dropout,
    ``base_model.fc`` is a Dropout and ``new_fc`` the classifier.
    """
    gen = torch.Generator().manual_seed(1)
    n_round = 2 if sum(1 for k in torchvision if re.match(r'^layer3\.\d+\.conv1\.weight$', k)) \
        >= 23 else 1
    base: dict[str, torch.Tensor] = {}
    for key, value in torchvision.items():
        if key.startswith('fc.'):
            continue
        m = re.match(r'^(layer(\d))\.(\d+)\.(.+)$', key)
        if m is None:
            base[key] = value
            continue
        stage, layer, idx, rest = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if shift_place == 'blockres' and idx % n_round == 0:
            rest = re.sub(r'^conv1\.', 'conv1.net.', rest)
        block = f'{idx}.net.{rest}' if shift_place == 'block' else f'{idx}.{rest}'
        if non_local and ((layer == 2 and idx in (0, 2)) or (layer == 3 and idx in (0, 2, 4))):
            block = f'{idx}.block.{block[len(str(idx)) + 1:]}'
        pool = '.net' if temporal_pool and layer == 2 else ''
        base[f'{stage}{pool}.{block}'] = value
    if non_local:
        for layer, idxs, channels in ((2, (0, 2), 512), (3, (0, 2, 4), 1024)):
            for idx in idxs:
                pool = '.net' if temporal_pool and layer == 2 else ''
                p, inter = f'layer{layer}{pool}.{idx}.nl.', channels // 2
                for name, shape in (('g.0', (inter, channels)), ('theta', (inter, channels)),
                                    ('phi.0', (inter, channels)), ('W.0', (channels, inter))):
                    base[f'{p}{name}.weight'] = torch.randn(*shape, 1, 1, 1, generator=gen) * .05
                    base[f'{p}{name}.bias'] = torch.randn(shape[0], generator=gen) * 0.05
                base[f'{p}W.1.weight'] = torch.rand(channels, generator=gen) + 0.5
                base[f'{p}W.1.bias'] = torch.randn(channels, generator=gen) * 0.1
                base[f'{p}W.1.running_mean'] = torch.randn(channels, generator=gen) * 0.1
                base[f'{p}W.1.running_var'] = torch.rand(channels, generator=gen) + 0.5
                base[f'{p}W.1.num_batches_tracked'] = torch.tensor(100)
    feat = torchvision['fc.weight'].shape[1]
    fc = {'weight': torch.randn(num_classes, feat, generator=gen) * 0.01,
          'bias': torch.randn(num_classes, generator=gen) * 0.01}
    state = OrderedDict((f'module.base_model.{k}', v) for k, v in base.items())
    for name, value in fc.items():
        state[f'module.new_fc.{name}' if dropout else f'module.base_model.fc.{name}'] = value
    return {'epoch': 25, 'arch': 'resnet50', 'state_dict': state,
            'optimizer': {'state': {}, 'param_groups': [{'lr': 0.01, 'params': [0, 1]}]},
            'best_prec1': 71.25}


# --- pure mappings ------------------------------------------------------------------------

def test_torchvision_mapping_by_name():
    t = torch.zeros(1)
    out = torchvision_to_resnet({'conv1.weight': t, 'bn1.running_var': t,
                                 'layer1.0.conv2.weight': t, 'layer1.0.bn3.bias': t,
                                 'layer2.0.downsample.0.weight': t,
                                 'layer2.0.downsample.1.running_mean': t, 'fc.weight': t,
                                 'fc.bias': t, 'stray.layer1.0.conv1.weight': t})
    assert set(out) == {
        'conv1.conv.weight', 'conv1.bn.running_var', 'layer1.0.conv2.conv.weight',
        'layer1.0.conv3.bn.bias', 'layer2.0.downsample.conv.weight',
        'layer2.0.downsample.bn.running_mean', 'stray.layer1.0.conv1.weight',
        # num_batches_tracked filled beside each running_mean
        'layer2.0.downsample.bn.num_batches_tracked'}
    assert out['layer2.0.downsample.bn.num_batches_tracked'].item() == 0


def test_timm_mapping_and_refused_variants():
    t = torch.zeros(1)
    assert timm_to_resnet({'module.conv1.weight': t, 'module.bn1.running_mean': t}).keys() == {
        'conv1.conv.weight', 'conv1.bn.running_mean', 'conv1.bn.num_batches_tracked'}
    with pytest.raises(ValueError, match='deep stem'):
        timm_to_resnet({'conv1.0.weight': t, 'conv1.1.weight': t})
    with pytest.raises(ValueError, match='average-pool shortcut'):
        timm_to_resnet({'conv1.weight': t, 'layer2.0.downsample.2.weight': t})
    with pytest.raises(ValueError, match='squeeze-excitation'):
        timm_to_resnet({'conv1.weight': t, 'layer1.0.se.fc1.weight': t})


def test_tsm_mapping_by_name():
    t = torch.zeros(2)
    out = tsm_to_mmaction({
        'module.base_model.conv1.weight': t,
        'module.base_model.layer1.0.conv1.net.weight': t,      # blockres shift
        'module.base_model.layer1.0.bn1.weight': t,
        'module.base_model.layer1.1.net.conv2.weight': t,      # block shift
        'module.base_model.layer1.1.net.downsample.1.bias': t,
        'module.base_model.layer2.0.block.conv1.net.weight': t,  # non-local wrapper
        'module.base_model.layer2.0.nl.g.0.weight': t,
        'module.base_model.layer2.0.nl.theta.bias': t,
        'module.base_model.layer2.0.nl.phi.0.weight': t,
        'module.base_model.layer2.0.nl.W.0.weight': t,
        'module.base_model.layer2.0.nl.W.1.running_var': t,
        'module.base_model.layer2.net.1.conv1.net.weight': t,  # temporal pool
        'module.new_fc.weight': t,
        'module.something_else': t,
    })
    assert list(out) == [
        'backbone.conv1.conv.weight', 'backbone.layer1.0.conv1.conv.net.weight',
        'backbone.layer1.0.conv1.bn.weight', 'backbone.layer1.1.net.conv2.conv.weight',
        'backbone.layer1.1.net.downsample.bn.bias', 'backbone.layer2.0.block.conv1.conv.net.weight',
        'backbone.layer2.0.non_local_block.g.0.conv.weight',
        'backbone.layer2.0.non_local_block.theta.conv.bias',
        'backbone.layer2.0.non_local_block.phi.0.conv.weight',
        'backbone.layer2.0.non_local_block.conv_out.conv.weight',
        'backbone.layer2.0.non_local_block.conv_out.bn.running_var',
        'backbone.layer2.net.1.conv1.conv.net.weight', 'cls_head.fc_cls.weight',
        'something_else']


def test_fold_conv_bias_into_bn_is_exact():
    """Conv(bias) + BN equals the bias-free conv + BN with the folded running mean."""
    conv_b = nn.Conv3d(8, 4, 1, bias=True)
    bn = nn.BatchNorm3d(4)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    sd = {f'conv.{k}': v for k, v in conv_b.state_dict().items()}
    sd.update({f'bn.{k}': v for k, v in bn.state_dict().items()})
    folded = fold_conv_bias_into_bn(sd, 'conv', 'bn')
    assert 'conv.bias' not in folded
    plain = nn.Sequential(nn.Conv3d(8, 4, 1, bias=False), nn.BatchNorm3d(4))
    plain.load_state_dict({k.replace('conv.', '0.').replace('bn.', '1.'): v
                           for k, v in folded.items()})
    x = torch.randn(2, 8, 3, 4, 4)
    for train in (False, True):
        ref = nn.Sequential(conv_b, bn).train(train)
        plain.train(train)
        with torch.no_grad():
            assert torch.allclose(ref(x), plain(x), atol=1e-5)


def test_inflate_conv1_weight():
    weight = torch.randn(64, 3, 7, 7)
    flow = inflate_conv1_weight(weight, 10)
    assert flow.shape == (64, 10, 7, 7) and flow.is_contiguous()
    assert torch.allclose(flow, weight.mean(dim=1, keepdim=True).expand(-1, 10, -1, -1))
    with pytest.raises(ValueError, match='in_channels must be a positive int, got 0'):
        inflate_conv1_weight(weight, 0)
    with pytest.raises(ValueError, match=r'4-D conv weight .* got shape \(64, 3\)'):
        inflate_conv1_weight(weight[:, :, 0, 0], 2)


@pytest.mark.parametrize('kwargs', [
    dict(depth=18, shift_place='blockres'),
    dict(depth=34, shift_place='block', temporal_pool=True),
    dict(depth=50, non_local=NL_R50, non_local_cfg=NL_CFG, temporal_pool=True),
    dict(depth=50, shift_place='block', non_local=NL_R50, non_local_cfg=NL_CFG),
    dict(depth=101, is_shift=False, in_channels=2),
    dict(depth=152, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1)),
])
def test_infer_arch_reads_the_structure_back(kwargs):
    with torch.device('meta'):
        model = ResNetTSM(num_segments=4, **kwargs)
    arch = infer_arch(model.state_dict())
    assert arch['depth'] == kwargs['depth']
    assert arch['in_channels'] == kwargs.get('in_channels', 3)
    assert arch['is_shift'] == kwargs.get('is_shift', True)
    if arch['is_shift']:
        assert arch['shift_place'] == kwargs.get('shift_place', 'blockres')
    assert arch['temporal_pool'] == kwargs.get('temporal_pool', False)
    assert arch['num_stages'] == kwargs.get('num_stages', 4)
    assert arch['non_local'] == model.non_local_stages


def test_detect_format():
    t = torch.zeros(1)
    assert detect_format({'module.base_model.conv1.weight': t}) == 'tsm'
    assert detect_format({'backbone.conv1.conv.weight': t, 'cls_head.fc_cls.weight': t}) == \
        'mmaction'
    assert detect_format({'conv1.conv.weight': t}) == 'tsmnet'
    assert detect_format({'conv1.weight': t, 'bn1.weight': t}) == 'torchvision'
    assert detect_format({'blocks.0.attn.qkv.weight': t}) == 'unknown'


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
