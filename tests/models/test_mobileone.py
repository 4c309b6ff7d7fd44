"""MobileOne and MobileOneTSM: parity with MMPretrain 1.2.0's ``MobileOne`` and MMAction2
1.2.0's ``MobileOneTSM`` (in this process, through tests/mmpretrain_standin.py), the
reparameterisation, the reference's defects, and construction errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from parity import assert_same_numbers, max_abs_diff, randomize, shapes
from torch import nn

import tsmnet
from tsmnet import MobileOne, MobileOneTSM, TemporalShift
from tsmnet.models.mobileone_tsm import UnshiftedSite
from tsmnet.models.reparam import is_training_form, reparameterize_state_dict
from tsmnet.weights.keymap import rewrap_state_dict

# A small architecture with every kind of block: several conv branches, SE blocks, widths
# whose depthwise blocks have an identity branch; the shipped ones are tested as slow.
TINY = dict(num_blocks=[1, 2, 1, 1], width_factor=[0.25, 0.25, 0.5, 0.5],
            num_conv_branches=[2, 1, 3, 1], num_se_blocks=[0, 1, 1, 1])

TSM_OPTIONS = {
    'default': dict(arch=TINY),
    'shift-div-4': dict(arch=TINY, shift_div=4),
    'shift-div-2': dict(arch=TINY, shift_div=2),  # stage0 shifts too (3 // 2 = 1 channel)
    'no-shift': dict(arch=TINY, is_shift=False),
    'segments-1': dict(arch=TINY, num_segments=1),
    'segments-3': dict(arch=TINY, num_segments=3),
    'out-indices': dict(arch=TINY, out_indices=(3,)),
    'frozen-stages': dict(arch=TINY, frozen_stages=2),
    'norm-eval': dict(arch=TINY, norm_eval=True),
    'no-se': dict(arch=TINY, se_cfg=None),
    'se-ratio': dict(arch=TINY, se_cfg=dict(ratio=4)),
    'leaky-relu': dict(arch=TINY, act_cfg=dict(type='LeakyReLU', negative_slope=0.1)),
    'deploy': dict(arch=TINY, deploy=True),
    'in-channels-2': dict(arch=TINY, in_channels=2),
}
PLAIN_OPTIONS = {
    'default': dict(arch=TINY),
    'all-stages': dict(arch=TINY, out_indices=(0, 1, 2, 3)),
    'negative-index': dict(arch=TINY, out_indices=-2),
    'frozen-all': dict(arch=TINY, frozen_stages=4),
    'deploy': dict(arch=TINY, deploy=True),
}


@pytest.fixture(scope='module')
def refs():
    """MMPretrain's ``MobileOne`` and MMAction2's ``MobileOneTSM``."""
    from mmpretrain_standin import import_reference_mobileone

    try:
        return import_reference_mobileone()
    except ImportError as err:
        pytest.skip(f'MMPretrain 1.2.0 / MMAction2 1.2.0 do not import here ({err}); '
                    f'pip install -e ".[mmpretrain,mmaction]"')


def _pair(ref_cls, our_cls, kwargs):
    ref = ref_cls(**kwargs)
    ours = our_cls(**kwargs)
    randomize(ref)
    assert shapes(ref) == shapes(ours)
    assert [n for n, _ in ref.named_modules()] == [n for n, _ in ours.named_modules()]
    return ref, ours


def _frames(model, clips=2, size=32):
    return torch.randn(clips * getattr(model, 'num_segments', 1), model.in_channels, size, size)


QUICK = {'default', 'deploy'}


def _tiers(options):
    """The quick tier runs the default and deploy forms; every other option is slow."""
    return [pytest.param(n, marks=() if n in QUICK else pytest.mark.slow) for n in sorted(options)]


@pytest.mark.parametrize('name', _tiers(TSM_OPTIONS))
def test_tsm_parity_for_each_option(refs, name):
    kwargs = dict(TSM_OPTIONS[name], pretrained2d=False)
    ref, ours = _pair(refs[1], MobileOneTSM, kwargs)
    assert_same_numbers(ref, ours, _frames(ours))


@pytest.mark.parametrize('name', _tiers(PLAIN_OPTIONS))
def test_plain_parity_for_each_option(refs, name):
    ref, ours = _pair(refs[0], MobileOne, PLAIN_OPTIONS[name])
    assert_same_numbers(ref, ours, _frames(ours))


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['s0', 's1', 's2', 's3', 's4'])
def test_shipped_archs_parity_and_switch(refs, arch):
    """Every published width, both forms: float32 outputs and float64 gradients, then the
    reference's and tsmnet's ``switch_to_deploy`` (eval outputs and the folded weights)."""
    ref, ours = _pair(refs[1], MobileOneTSM, dict(arch=arch, num_segments=2,
                                                   pretrained2d=False))
    x = torch.randn(4, 3, 32, 32)
    assert_same_numbers(ref, ours, x)
    ref.switch_to_deploy()
    ours.switch_to_deploy()
    assert shapes(ref) == shapes(ours)
    for (name, a), b in zip(ref.state_dict().items(), ours.state_dict().values()):
        assert max_abs_diff(a, b) <= 1e-5, name
    assert_same_numbers(ref, ours, x, train=False)


@pytest.mark.slow
def test_shipped_config_backbone_parity(refs):
    """The backbone of MMAction2's MobileOne-S4 TSM config (its ImageNet checkpoint aside)
    and of its deploy twin; MMAction2's parameter counts (12.90 M and 12.79 M)."""
    import mmaction
    from mmengine.config import Config

    root = f'{mmaction.__path__[0]}/.mim/configs/recognition/tsm/'
    name = 'tsm_imagenet-pretrained-mobileone-s4{}_8xb16-1x1x16-50e_kinetics400-rgb.py'
    for deploy in ('', '_deploy'):
        backbone = Config.fromfile(root + name.format(deploy)).model.backbone.to_dict()
        assert backbone.pop('type') == 'MobileOneTSM'
        assert backbone.pop('init_cfg')['type'] == 'Pretrained'
        ref, ours = _pair(refs[1], MobileOneTSM, dict(backbone, pretrained2d=False))
        count = sum(p.numel() for p in ours.parameters())
        assert count == (12_789_352 if deploy else 12_902_248)
        assert_same_numbers(ref, ours, torch.randn(8, 3, 32, 32), train=not deploy)


# -- reparameterisation ----------------------------------------------------------------------

def _random_training_form(**kwargs):
    model = MobileOneTSM(arch=TINY, num_segments=2, **kwargs).double()
    randomize(model)  # BNs with non-trivial statistics and affine parameters
    return model.eval()


@pytest.mark.parametrize('kwargs', [dict(), dict(shift_div=2), dict(se_cfg=None),
                                    dict(out_indices=(0, 1, 2, 3))])
def test_switch_to_deploy_equals_training_form(kwargs):
    model = _random_training_form(**kwargs)
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        before = model(x)
        assert model.switch_to_deploy() is model
        after = model(x)
    for a, b in zip(before if isinstance(before, tuple) else (before,),
                    after if isinstance(after, tuple) else (after,)):
        assert max_abs_diff(a, b) <= 1e-10 * max(1.0, a.abs().max().item())
    assert not any('branch_conv_list' in k for k in model.state_dict())
    assert model.switch_to_deploy() is model  # a second call changes nothing


def test_deploy_true_loads_the_reparameterised_state_dict_in_float32():
    model = _random_training_form().float()
    x = torch.randn(4, 3, 32, 32)
    deployed = MobileOneTSM(arch=TINY, num_segments=2, deploy=True).eval()
    converted = reparameterize_state_dict(model.state_dict())
    assert not is_training_form(converted) and is_training_form(model.state_dict())
    assert list(converted) == list(deployed.state_dict())
    deployed.load_state_dict(converted, strict=True)
    with torch.no_grad():
        assert max_abs_diff(model(x), deployed(x)) <= 1e-5
    # the same keys as switch_to_deploy, and a deploy-form state dict stays as it is
    assert reparameterize_state_dict(converted).keys() == converted.keys()
    assert list(model.switch_to_deploy().state_dict()) == list(converted)


def test_recognizer_state_dict_converts_with_its_prefix():
    model = _random_training_form().float()
    state = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    state['cls_head.fc_cls.weight'] = torch.zeros(3, 32)
    converted = reparameterize_state_dict(state)
    assert 'backbone.stage1.0.net.branch_reparam.weight' in converted
    assert torch.equal(converted['cls_head.fc_cls.weight'], state['cls_head.fc_cls.weight'])


def test_deploy_form_keeps_frozen_stages_frozen_and_the_rest_trainable():
    model = MobileOneTSM(arch=TINY, num_segments=2, frozen_stages=1).train()
    model.switch_to_deploy()
    assert not any(p.requires_grad for p in model.stage0.parameters())
    assert not any(p.requires_grad for p in model.stage1.parameters())
    assert all(p.requires_grad for p in model.stage2.parameters())


def test_switch_to_deploy_refuses_group_norm():
    model = MobileOne(arch=TINY, norm_cfg=dict(type='GN', num_groups=4))
    with pytest.raises(TypeError, match='switch_to_deploy needs BatchNorm'):
        model.switch_to_deploy()


# -- structure -------------------------------------------------------------------------------

def test_every_block_is_a_shift_site_at_mmaction_paths():
    model = MobileOneTSM('s0')
    sites = [n for n, m in model.named_modules() if isinstance(m, TemporalShift)]
    assert len(sites) == 2 * (2 + 8 + 10 + 1)  # stage0's 3 input channels: nothing to shift
    assert sites[:2] == ['stage1.0', 'stage1.1'] and isinstance(model.stage0, UnshiftedSite)
    keys = model.state_dict()
    assert 'stage0.net.branch_conv_list.0.conv.weight' in keys
    assert 'stage1.0.net.branch_norm.running_var' not in keys  # stride 2: no identity
    assert 'stage1.2.net.branch_norm.running_var' in keys
    deployed = MobileOneTSM('s4', deploy=True).state_dict()
    assert 'stage0.net.branch_reparam.weight' in deployed
    assert 'stage3.19.net.se.conv1.conv.bias' in deployed


def test_causal_mode_reads_only_the_past():
    model = MobileOneTSM(arch=TINY, num_segments=4, shift_mode='causal').eval()
    randomize(model)
    x = torch.randn(4, 3, 32, 32)
    y = x.clone()
    y[3] = torch.randn(3, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:3], b[:3], rtol=0, atol=0)
    assert not torch.allclose(a[3], b[3])


def test_every_parameter_gets_a_gradient():
    model = MobileOneTSM(arch=TINY, num_segments=2)
    model.init_weights()
    randomize(model)
    model(torch.randn(4, 3, 32, 32)).square().mean().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]


def test_clips_do_not_mix():
    model = MobileOneTSM(arch=TINY, num_segments=4).double().eval()
    clip = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        alone = model(clip)
        batched = model(torch.cat([clip, torch.randn_like(clip)]))[:4]
    torch.testing.assert_close(alone, batched, rtol=0, atol=1e-10)


def test_model_pickles_and_public_names(tmp_path):
    model = MobileOneTSM(arch=TINY, num_segments=2).eval()
    x = torch.randn(4, 3, 32, 32)
    torch.save(model, tmp_path / 'model.pt')
    again = torch.load(tmp_path / 'model.pt', weights_only=False)  # our own file
    assert torch.equal(again(x), model(x))
    assert pickle.loads(pickle.dumps(model)).num_segments == 2
    assert tsmnet.MobileOne is MobileOne and tsmnet.models.MobileOneTSM is MobileOneTSM
    assert MobileOneTSM('s4').feat_dim == 2048 and MobileOne('s0').feat_dim == 1024


def test_pretrained_2d_checkpoint_loads_with_prefix_into_both_forms(tmp_path):
    """An MMPretrain ImageNet checkpoint (``backbone.`` keys, a ``head``): the TSM gets the
    ``net`` segments, the deploy form the folded weights, both strictly."""
    plain = MobileOne(arch=TINY).eval()
    randomize(plain)
    state = {f'backbone.{k}': v for k, v in plain.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 64)
    path = tmp_path / 'in1k.pth'
    torch.save({'state_dict': state}, path)
    init_cfg = dict(type='Pretrained', checkpoint=str(path), prefix='backbone')
    x = torch.randn(4, 3, 32, 32)
    expected = MobileOneTSM(arch=TINY, num_segments=2).eval()
    expected.load_state_dict(rewrap_state_dict(plain.state_dict(), expected.state_dict(),
                                               ['net']))
    for deploy in (False, True):
        model = MobileOneTSM(arch=TINY, num_segments=2, init_cfg=init_cfg, deploy=deploy)
        model.init_weights()
        with torch.no_grad():
            assert max_abs_diff(model.eval()(x), expected(x)) <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize('order', ['tsmnet-first', 'mmaction-first'])
def test_mmaction_drop_in_in_both_import_orders(refs, order):
    """``type='MobileOneTSM'`` builds tsmnet's class whichever of tsmnet and MMAction2's
    ``mobileone_tsm`` (which registers its own class) is imported first."""
    # MMEngine is in use when tsmnet is imported (as under custom_imports=['tsmnet']): a plain
    # ``import tsmnet`` before MMEngine registers nothing (docs/mmaction2.md)
    first = ('import mmengine.registry; import tsmnet; import_reference_mobileone()'
             if order == 'tsmnet-first' else 'import_reference_mobileone(); import tsmnet')
    tests = os.path.dirname(os.path.dirname(__file__))
    code = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {tests!r})
        from mmpretrain_standin import import_reference_mobileone
        {first}
        from mmaction.registry import MODELS
        from mmengine.registry import DefaultScope
        with DefaultScope.overwrite_default_scope('mmaction'):
            m = MODELS.build(dict(type='MobileOneTSM', arch='s0', num_segments=4))
        print(type(m) is tsmnet.MobileOneTSM, m.num_segments)
    ''')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ['True', '4']


# -- the reference's defects -----------------------------------------------------------------

def test_defect_train_returns_none(refs):
    ref = refs[1](TINY, pretrained2d=False)
    assert ref.train() is None and ref.eval() is None
    ours = MobileOneTSM(TINY)
    assert ours.train() is ours and ours.eval() is ours and not ours.training
    assert MobileOne(TINY).eval() is not None


def test_defect_init_weights_without_checkpoint(refs):
    ref = refs[1](TINY)  # pretrained2d=True by default, init_cfg the default list
    with pytest.raises(AttributeError):
        ref.init_weights()  # self.init_cfg.get(...) on a list
    torch.manual_seed(3)
    ours = MobileOneTSM(TINY)
    ours.init_weights()
    assert ours.stage1[0].net.branch_conv_list[0].norm.weight.eq(1).all()


def test_defect_switch_to_deploy_freezes_every_parameter(refs):
    ref = refs[1](TINY, pretrained2d=False)
    ref.switch_to_deploy()
    assert not any(p.requires_grad for p in ref.parameters())  # detach_() on every one
    ours = MobileOneTSM(TINY).switch_to_deploy()
    assert all(p.requires_grad for p in ours.parameters())


def test_defect_several_out_indices(refs):
    ref = refs[1](TINY, out_indices=(2, 3), pretrained2d=False)
    with pytest.raises(AssertionError):
        ref(torch.randn(8, 3, 32, 32))
    outs = MobileOneTSM(TINY, out_indices=(2, 3))(torch.randn(8, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [128, 256]


def test_defect_out_index_past_the_last_stage(refs):
    """The reference accepts out_indices=(4,) (its check is ``<= len(stages)``) and returns
    nothing; tsmnet refuses it."""
    ref = refs[0](TINY, out_indices=(4,))
    ref.eval()  # returns None
    assert ref(torch.randn(1, 3, 32, 32)) == ()
    with pytest.raises(ValueError, match=r'out_indices must be stage indices in \[0, 3\]'):
        MobileOne(TINY, out_indices=(4,))


def test_frozen_stages_agree_with_the_reference(refs):
    """The training form freezes the same parameters (tsmnet's deploy form keeps them frozen:
    test_deploy_form_keeps_frozen_stages_frozen_and_the_rest_trainable)."""
    ref = refs[1](TINY, frozen_stages=1, pretrained2d=False)
    ours = MobileOneTSM(TINY, frozen_stages=1)
    assert [n for n, p in ref.named_parameters() if p.requires_grad] == \
        [n for n, p in ours.named_parameters() if p.requires_grad]


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='s5'), r"arch must be one of \['s0', 's1', 's2', 's3', 's4'\] or a dict"),
    (dict(arch=3), r'arch must be a str or a dict, got int'),
    (dict(arch=dict(num_blocks=[1, 1, 1, 1])), r'arch must have the keys'),
    (dict(arch=dict(TINY, num_blocks=[1, 1, 1])), r"arch\['num_blocks'\] must be a list of 4"),
    (dict(arch=dict(TINY, num_se_blocks=[0, 3, 0, 0])), r'num_se_blocks .* exceeds'),
    (dict(arch=TINY, out_indices=(5,)), r'out_indices must be stage indices'),
    (dict(arch=TINY, out_indices='3'), r'out_indices must be an int or a sequence'),
    (dict(arch=TINY, frozen_stages=5), r'frozen_stages must be an int from -1 to 4'),
    (dict(arch=TINY, shift_div=17), r'shift_div=17 leaves no channel to shift.*<= 16'),
    (dict(arch=TINY, shift_div=1), r'shift_div must be >= 2'),
    (dict(arch=TINY, num_segments=0), r'num_segments must be >= 1, got 0'),
    (dict(arch=TINY, se_cfg=dict(return_weight=True)), r'return_weight must be False'),
    (dict(arch=TINY, se_cfg=[('ratio', 4)]), r'se_cfg must be a dict or None'),
])
def test_construction_errors_name_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MobileOneTSM(**kwargs)


def test_forward_errors_give_the_numbers():
    with pytest.raises(ValueError, match=r'multiple of num_segments \(8\)'):
        MobileOneTSM(TINY)(torch.randn(12, 3, 32, 32))
    with pytest.raises(ValueError, match=r'input must have in_channels=3 channels, got 4'):
        MobileOneTSM(TINY)(torch.randn(8, 4, 32, 32))
    with pytest.raises(TypeError, match='must be a torch.Tensor'):
        MobileOne(TINY)([1, 2])


def test_unshifted_site_is_a_plain_wrapper():
    site = UnshiftedSite(nn.Identity())
    x = torch.randn(2, 3, 4, 4)
    assert site(x) is x
