"""MobileNetV2 and MobileNetV2TSM: parity with MMAction2 1.2.0's own classes, structure, the
reference's defects, and construction and input errors."""

from __future__ import annotations

import pickle

import pytest
import torch
from parity import assert_same_numbers, randomize, shapes
from torch import nn

import tsmnet
from tsmnet import MobileNetV2, MobileNetV2TSM, TemporalShift

# Every option of the reference, each with the others at their defaults. Inputs are 2 clips
# at 32x32 so that batch mixing would show.
TSM_OPTIONS = {
    'default': dict(),
    'shift-div-4': dict(shift_div=4),
    'shift-div-16': dict(shift_div=16),
    'no-shift': dict(is_shift=False),
    'segments-3': dict(num_segments=3),
    'segments-1': dict(num_segments=1),
    'widen-0.5': dict(widen_factor=0.5),
    'widen-1.4': dict(widen_factor=1.4),
    'widen-0.35': dict(widen_factor=0.35, shift_div=4),
    'out-indices': dict(out_indices=(0, 2, 5, 6, 7)),
    'frozen-stages': dict(frozen_stages=3),
    'frozen-all': dict(frozen_stages=8),
    'norm-eval': dict(norm_eval=True),
    'with-cp': dict(with_cp=True),
    'group-norm': dict(norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
                       widen_factor=1.0),
    'leaky-relu': dict(act_cfg=dict(type='LeakyReLU', negative_slope=0.1)),
    'conv-cfg': dict(conv_cfg=dict(type='Conv2d')),
}
PLAIN_OPTIONS = {
    'default': dict(),
    'widen-0.75': dict(widen_factor=0.75),
    'out-indices': dict(out_indices=(1, 3, 7)),
    'frozen-stages': dict(frozen_stages=2),
}


def _pair(ref_cls, our_cls, kwargs):
    ref = ref_cls(**kwargs)
    ours = our_cls(**kwargs)
    randomize(ref)
    assert shapes(ref) == shapes(ours)
    assert [n for n, _ in ref.named_modules()] == [n for n, _ in ours.named_modules()]
    return ref, ours


@pytest.mark.slow  # parity with MMAction2: 13-33 s of CPU each
@pytest.mark.parametrize('name', sorted(TSM_OPTIONS))
def test_tsm_parity_for_each_option(mmaction_models, name):
    kwargs = TSM_OPTIONS[name]
    ref, ours = _pair(mmaction_models.MobileNetV2TSM, MobileNetV2TSM, kwargs)
    x = torch.randn(2 * ours.num_segments, 3, 32, 32)
    assert_same_numbers(ref, ours, x)


@pytest.mark.slow  # parity with MMAction2
@pytest.mark.parametrize('name', sorted(PLAIN_OPTIONS))
def test_plain_parity_for_each_option(mmaction_models, name):
    ref, ours = _pair(mmaction_models.MobileNetV2, MobileNetV2, PLAIN_OPTIONS[name])
    assert_same_numbers(ref, ours, torch.randn(4, 3, 32, 32))


@pytest.mark.slow  # parity with MMAction2
def test_shipped_config_backbone_parity(mmaction_models):
    """The backbone of MMAction2's TSM-MobileNetV2 config (its ImageNet checkpoint aside)."""
    import mmaction
    from mmengine.config import Config

    path = (f'{mmaction.__path__[0]}/.mim/configs/recognition/tsm/'
            'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb.py')
    backbone = Config.fromfile(path).model.backbone.to_dict()
    assert backbone.pop('type') == 'MobileNetV2TSM'
    assert backbone.pop('pretrained') == 'mmcls://mobilenet_v2'
    ref, ours = _pair(mmaction_models.MobileNetV2TSM, MobileNetV2TSM, backbone)
    assert_same_numbers(ref, ours, torch.randn(16, 3, 32, 32))


def test_ten_shift_sites_at_mmaction_paths():
    model = MobileNetV2TSM()
    sites = [n for n, m in model.named_modules() if isinstance(m, TemporalShift)]
    assert sites == ['layer2.1.conv.0', 'layer3.1.conv.0', 'layer3.2.conv.0', 'layer4.1.conv.0',
                     'layer4.2.conv.0', 'layer4.3.conv.0', 'layer5.1.conv.0', 'layer5.2.conv.0',
                     'layer6.1.conv.0', 'layer6.2.conv.0']
    assert 'layer2.1.conv.0.net.conv.weight' in model.state_dict()
    assert all(m.num_segments == 8 and m.shift_div == 8 for m in model.modules()
               if isinstance(m, TemporalShift))


def test_causal_mode_reads_only_the_past():
    model = MobileNetV2TSM(num_segments=4, shift_mode='causal').eval()
    randomize(model)
    x = torch.randn(4, 3, 32, 32)
    y = x.clone()
    y[3] = torch.randn(3, 32, 32)  # a different last frame
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:3], b[:3], rtol=0, atol=0)
    assert not torch.allclose(a[3], b[3])
    # the bidirectional model lets frame 2 see frame 3
    both = MobileNetV2TSM(num_segments=4).eval()
    both.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(both(x)[2], both(y)[2])


@pytest.mark.slow
def test_every_parameter_gets_a_gradient():
    model = MobileNetV2TSM(num_segments=4, out_indices=(7,))
    model.init_weights()
    randomize(model)
    model(torch.randn(8, 3, 32, 32)).square().mean().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]


@pytest.mark.slow
def test_clips_do_not_mix():
    model = MobileNetV2TSM(num_segments=4).double().eval()
    clip = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        alone = model(clip)
        batched = model(torch.cat([clip, torch.randn_like(clip)]))[:4]
    torch.testing.assert_close(alone, batched, rtol=0, atol=1e-10)


def test_model_pickles_and_reloads(tmp_path):
    model = MobileNetV2TSM(num_segments=2).eval()
    x = torch.randn(4, 3, 32, 32)
    torch.save(model, tmp_path / 'model.pt')
    again = torch.load(tmp_path / 'model.pt', weights_only=False)  # our own file
    assert torch.equal(again(x), model(x))
    assert pickle.loads(pickle.dumps(model)).num_segments == 2


@pytest.mark.parametrize('name', ['default', 'no-shift', 'widen-0.35', 'widen-1.4',
                                  'group-norm', 'out-indices'])
def test_plain_2d_keys_are_those_of_the_plain_network(name, monkeypatch):
    """Read off the architecture table, without building a network: the keys of the plain
    2D MobileNetV2 of the same width and layer configs (the shift's ``.net`` removed)."""
    kwargs = TSM_OPTIONS[name]
    model = MobileNetV2TSM(num_segments=2, **kwargs)
    plain_kwargs = {k: v for k, v in kwargs.items() if k not in ('is_shift', 'shift_div')}
    plain = set(MobileNetV2(**plain_kwargs).state_dict())

    def no_build(*args, **kwargs):
        raise AssertionError('plain_2d_keys built a network')

    monkeypatch.setattr(MobileNetV2, '__init__', no_build)
    assert model.plain_2d_keys() == plain
    assert model.plain_2d_keys() == {k.replace('.net.', '.') for k in model.state_dict()}


def test_public_names():
    assert tsmnet.MobileNetV2 is MobileNetV2 and tsmnet.MobileNetV2TSM is MobileNetV2TSM
    assert tsmnet.models.MobileNetV2TSM is MobileNetV2TSM
    assert MobileNetV2TSM().feat_dim == 1280


def test_frozen_stages_and_norm_eval_hold_in_train_mode():
    model = MobileNetV2TSM(frozen_stages=2, norm_eval=True).train()
    for frozen in (model.conv1, model.layer1, model.layer2):
        assert not any(p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


# -- the reference's defects ---------------------------------------------------------------

def test_defect_init_weights_without_pretrained(mmaction_models):
    ref = mmaction_models.MobileNetV2TSM()  # pretrained2d=True and pretrained=None: defaults
    with pytest.raises(TypeError):
        ref.init_weights()  # _load_checkpoint(None)
    torch.manual_seed(3)
    ours = MobileNetV2TSM()
    ours.init_weights()  # from scratch, by init_cfg
    torch.manual_seed(3)
    again = MobileNetV2TSM()
    again.init_weights()
    for (name, p), q in zip(ours.state_dict().items(), again.state_dict().values()):
        assert torch.equal(p, q), name
    assert ours.conv1.bn.weight.eq(1).all()


def test_defect_train_returns_none(mmaction_models):
    ref = mmaction_models.MobileNetV2TSM()
    assert ref.train() is None and ref.eval() is None  # nn.Module.train returns self
    ours = MobileNetV2TSM()
    assert ours.train() is ours and ours.eval() is ours and not ours.training
    plain = MobileNetV2()
    assert plain.eval() is plain


class _Gate(nn.Module):
    """A module with a parameter of its own and a child named ``net`` (as a user's subclass
    may add): only the child's keys carry the ``net`` segment."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), 2.0))
        self.net = nn.Linear(2, 2)


def test_defect_2d_weights_renamed_by_substring(mmaction_models, tmp_path):
    """The reference renames a 2D key by replacing the name of any module that ``.net``
    was cut out of, as a substring: ``gate.scale`` becomes ``gate.net.scale`` and the load
    fails. tsmnet maps whole path segments of the model's own keys."""
    ref = mmaction_models.MobileNetV2TSM(num_segments=2)
    ref.gate = _Gate()
    plain = {k.replace('.net.', '.'): v for k, v in ref.state_dict().items()}
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': plain}, path)
    ref.pretrained = str(path)
    from mmengine.logging import MMLogger

    with pytest.raises(RuntimeError, match=r'gate\.net\.scale'):
        ref.load_original_weights(MMLogger.get_current_instance())
    ours = MobileNetV2TSM(num_segments=2, pretrained=str(path))
    ours.gate = _Gate()
    ours.init_weights()
    for k, v in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k


def test_defect_silent_arguments(mmaction_models):
    """The reference accepts a shift_div that leaves the narrowest site (24 channels) nothing
    to shift, and a widen_factor of 0, which builds 8-channel layers; tsmnet refuses both."""
    ref = mmaction_models.MobileNetV2TSM(shift_div=25)
    assert ref.layer2[1].conv[0].net.conv.in_channels // 25 == 0
    assert mmaction_models.MobileNetV2TSM(widen_factor=0).layer7[0].conv[2].conv.out_channels == 8
    with pytest.raises(ValueError, match='shift_div=25 leaves no channel'):
        MobileNetV2TSM(shift_div=25)
    with pytest.raises(ValueError, match='widen_factor must be > 0'):
        MobileNetV2TSM(widen_factor=0)


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, match', [
    (dict(widen_factor=0), r'widen_factor must be > 0, got 0'),
    (dict(widen_factor=-1.0), r'widen_factor must be > 0'),
    (dict(widen_factor='1'), r'widen_factor must be a number'),
    (dict(out_indices=(8,)), r'out_indices must be stage indices in \[0, 7\]'),
    (dict(out_indices=(-1,)), r'out_indices must be stage indices in \[0, 7\]'),
    (dict(out_indices=7), r'out_indices must be a sequence of ints'),
    (dict(frozen_stages=9), r'frozen_stages must be an int from -1 to 8'),
    (dict(shift_div=25), r'shift_div=25 leaves no channel to shift.*<= 24'),
    (dict(shift_div=1), r'shift_div must be >= 2'),
    (dict(num_segments=0), r'num_segments must be >= 1, got 0'),
    (dict(shift_mode='forward'), r"shift_mode must be one of \('bidirectional', 'causal'\)"),
    (dict(pretrained=3), r'pretrained must be a str or None, got int'),
])
def test_construction_errors_name_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MobileNetV2TSM(**kwargs)


@pytest.mark.parametrize('shape, match', [
    ((12, 3, 32, 32),
     r'the batch of input \(12 frames\) must be a positive multiple of num_segments \(8\)'),
    ((0, 3, 32, 32), r'the batch of input \(0 frames\)'),
    ((8, 4, 32, 32), r'input must have in_channels=3 channels, got 4'),
    ((8, 3, 32), r'input must be 4-D \[N \* T, C, H, W\]'),
])
def test_forward_errors_give_the_numbers(shape, match):
    with pytest.raises(ValueError, match=match):
        MobileNetV2TSM()(torch.randn(*shape))


def test_forward_refuses_integer_and_mismatched_frames():
    with pytest.raises(TypeError, match='floating-point'):
        MobileNetV2TSM()(torch.zeros(8, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match='differs from the model parameters'):
        MobileNetV2TSM()(torch.zeros(8, 3, 32, 32, dtype=torch.float64))
    with pytest.raises(TypeError, match='must be a torch.Tensor'):
        MobileNetV2()([1, 2])
