"""Every 2D conv of tsmnet's backbones is exactly ``nn.Conv2d`` (not mmcv's wrapper subclass,
which MMAction2 builds for ``conv_cfg=dict(type='Conv')``), so that tools matching the exact
class see it: ptflops' module backend counts every conv's MACs (torchao's quantizer: see
tests/deploy/test_x86_int8.py). The parity tests (test_resnet_tsm.py, test_mobilenet_v2_tsm.py)
show that the numbers and state-dict keys are MMAction2's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import tsmnet
from tsmnet import MobileNetV2, MobileNetV2TSM, ResNet, ResNetTSM
from tsmnet.models.layer_cfgs import conv_cfg_or_default

BUILDERS = {
    'resnet18': lambda **kw: ResNet(depth=18, **kw),
    'resnet50-tsm': lambda **kw: ResNetTSM(depth=50, num_segments=2, **kw),
    'resnet18-tsm-block': lambda **kw: ResNetTSM(depth=18, num_segments=2, shift_place='block',
                                                 **kw),
    'mobilenetv2': lambda **kw: MobileNetV2(**kw),
    'mobilenetv2-tsm': lambda **kw: MobileNetV2TSM(num_segments=2, **kw),
}
REFERENCE = {'resnet18': ('ResNet', dict(depth=18)),
             'resnet50-tsm': ('ResNetTSM', dict(depth=50, num_segments=2)),
             'resnet18-tsm-block': ('ResNetTSM', dict(depth=18, num_segments=2,
                                                      shift_place='block')),
             'mobilenetv2': ('MobileNetV2', {}),
             'mobilenetv2-tsm': ('MobileNetV2TSM', dict(num_segments=2))}


def _convs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]


@pytest.mark.parametrize('conv_cfg', [None, dict(type='Conv')], ids=['default', 'mmcv-conv'])
@pytest.mark.parametrize('name', sorted(BUILDERS))
def test_every_conv_is_a_plain_conv2d(mmaction_models, name, conv_cfg):
    ours = BUILDERS[name](conv_cfg=conv_cfg)
    ref_name, kwargs = REFERENCE[name]
    ref = getattr(mmaction_models, ref_name)(**kwargs, conv_cfg=conv_cfg or dict(type='Conv'))
    convs = _convs(ours)
    assert len(convs) == len(_convs(ref)) > 0  # the same convs as MMAction2 builds...
    assert [type(m) for m in convs] == [nn.Conv2d] * len(convs)  # ...each a plain nn.Conv2d
    assert list(ours.state_dict()) == list(ref.state_dict())


def test_the_recognizer_has_plain_convs():
    model = tsmnet.create_model('tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb',
                                depth=18, num_segments=2)
    convs = _convs(model)
    assert len(convs) == 20 and all(type(m) is nn.Conv2d for m in convs)


def test_conv_cfg_maps_only_the_mmcv_wrapper():
    assert conv_cfg_or_default(None) == dict(type='Conv2d')
    assert conv_cfg_or_default(dict(type='Conv')) == dict(type='Conv2d')
    given = dict(type='Conv3d', bias=True)
    assert conv_cfg_or_default(given) == given and conv_cfg_or_default(given) is not given
    assert given == dict(type='Conv3d', bias=True)  # the caller's dict is left alone


def _conv_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every conv on ``x``, counted from each conv's output shape."""
    total = 0

    def hook(conv, _inputs, out):
        nonlocal total
        k = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in _convs(model)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


# ptflops adds norms, activations and bias adds to the convs' MACs: about 1 % of ResNet-50's;
# 6.5 % of MobileNetV2's, whose depthwise convs make only 9 MACs per output (measured)
@pytest.mark.parametrize('name, extra', [('resnet50-tsm', 0.05), ('mobilenetv2-tsm', 0.10)])
def test_ptflops_module_backend_counts_every_conv(name, extra):
    ptflops = pytest.importorskip('ptflops')
    model = BUILDERS[name]().eval()
    x = torch.randn(4, 3, 32, 32)
    convs = _conv_macs(model, x)
    macs, _ = ptflops.get_model_complexity_info(
        model, tuple(x.shape[1:]), input_constructor=lambda _: {'x': x}, as_strings=False,
        print_per_layer_stat=False, backend='pytorch')
    assert convs <= macs <= (1 + extra) * convs, (macs, convs)  # before: 1 % of the convs
