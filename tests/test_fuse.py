"""tsmnet.fuse_conv_bn: batch norm folded into its conv gives the same function, for any
shift placement and norm, and never changes the model it was given."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsmnet import ResNetTSM, TemporalShift, fuse_conv_bn
from tsmnet.fuse import LiveFoldedConv, foldable


def _random_stats(model: nn.Module) -> None:
    """Running statistics and affine parameters far from the identity, so a wrong fold shows."""
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def _batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.quick_only('18-block')
@pytest.mark.parametrize('shift_place', ['blockres', 'block'])
@pytest.mark.parametrize('depth', [18, 50])
def test_fused_model_computes_the_same_function(depth: int, shift_place: str) -> None:
    model = ResNetTSM(depth, num_segments=4, shift_place=shift_place, pretrained=None,
                      out_indices=(0, 1, 2, 3))
    model.init_weights()
    _random_stats(model)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_conv_bn(model)
    assert _batch_norms(fused) == 0 and _batch_norms(model) > 0
    if shift_place == 'blockres':  # the convs that a shift wraps are folded too
        assert all(m.net.bias is not None
                   for m in fused.modules() if isinstance(m, TemporalShift))
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(x), fused(x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_group_norm_is_left_alone_and_inplace_changes_the_model() -> None:
    model = ResNetTSM(18, num_segments=4, pretrained=None,
                      norm_cfg=dict(type='GN', num_groups=4, requires_grad=True)).eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        assert fuse_conv_bn(model, inplace=True) is model
        assert torch.equal(model(x), expected)  # nothing to fold: the same numbers exactly


def test_bad_input_is_refused() -> None:
    model = ResNetTSM(18, num_segments=4, pretrained=None)
    with pytest.raises(ValueError, match='model must be in eval mode'):
        fuse_conv_bn(model)
    with pytest.raises(TypeError, match='model must be a torch.nn.Module, got dict'):
        fuse_conv_bn({})
    model.eval()
    model.layer1[0].conv1.bn.train()
    with pytest.raises(ValueError, match=r'layer1\.0\.conv1 is in training mode'):
        fuse_conv_bn(model)


def _conv_bn() -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    conv, norm = nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)
    _random_stats(norm)
    return conv, norm.eval()


def test_live_fold_equals_conv_then_norm_and_follows_the_live_weights() -> None:
    conv, norm = _conv_bn()
    folded = LiveFoldedConv(conv, norm)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    conv.double(), norm.double()  # a cast: new storage, refolded
    with torch.no_grad():
        torch.testing.assert_close(folded(x), norm(conv(x)), atol=1e-12, rtol=0)
        conv.weight.mul_(2)  # an in-place write (load_state_dict does these)
        norm.running_var.add_(1)
        torch.testing.assert_close(folded(x), norm(conv(x)), atol=1e-12, rtol=0)
        norm.eps = 0.5
        torch.testing.assert_close(folded(x), norm(conv(x)), atol=1e-12, rtol=0)
        conv.weight = nn.Parameter(torch.randn_like(conv.weight))  # replaced
        torch.testing.assert_close(folded(x), norm(conv(x)), atol=1e-12, rtol=0)


def test_live_fold_uses_running_statistics_and_honours_hooks() -> None:
    conv, norm = _conv_bn()
    norm.train()  # the fold is eval-mode batch norm whatever the flag
    folded = LiveFoldedConv(conv, norm)
    x = torch.randn(2, 4, 5, 5)
    before = norm.running_mean.clone()
    with torch.no_grad():
        want = norm.eval()(conv(x))
        norm.train()
        torch.testing.assert_close(folded(x), want, atol=1e-5, rtol=0)
        seen = []
        handle = conv.register_forward_hook(lambda m, i, o: seen.append(o.shape))
        torch.testing.assert_close(folded(x), want, atol=1e-5, rtol=0)
        handle.remove()
    assert seen == [torch.Size([2, 6, 5, 5])] and norm.training  # the flag is restored
    assert torch.equal(norm.running_mean, before)  # the statistics were never updated


def test_foldable() -> None:
    model = ResNetTSM(18, num_segments=4, pretrained=None)
    assert foldable(model.conv1) and foldable(model.layer1[0].conv1)  # a shift wraps its conv
    assert not foldable(model.layer1[0]) and not foldable(model.conv1.conv)
    model.conv1.turn_on_efficient_conv_bn_eval()  # mmcv's own fold: left to mmcv
    assert not foldable(model.conv1)
