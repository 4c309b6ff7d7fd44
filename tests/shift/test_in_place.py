"""The in-place inference shift: the numbers of the copying shift, and the input restored."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tsmnet import ResNetTSM, TemporalShift
from tsmnet.shift import ShiftSpec, choose, shifted_in_place, temporal_shift


class _Probe(nn.Module):
    """Records a copy of what it was given and whether that tensor is the input itself."""

    reads_input_only = True  # it promises tsmnet.shift that it never writes into x

    def forward(self, x):
        self.seen = x.clone()
        self.ptr = x.data_ptr()
        return x * 2


@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('t', [1, 2, 5])
def test_module_sees_the_shift_and_the_input_comes_back(mode, channels_last, t):
    x = torch.randn(3 * t, 16, 3, 4)
    x[0, :4] = math.inf
    x[-1, 2:6] = math.nan
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    before = x.clone()
    probe = _Probe()
    with torch.no_grad():
        out = TemporalShift(probe, t, shift_div=4, shift_mode=mode, inplace=True)(x)
    expected = temporal_shift(before, t, 4, mode)
    torch.testing.assert_close(probe.seen, expected, rtol=0, atol=0, equal_nan=True)
    assert probe.ptr == x.data_ptr()  # no copy was made
    torch.testing.assert_close(out, expected * 2, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(x, before, rtol=0, atol=0, equal_nan=True)  # restored exactly


def test_input_is_restored_when_the_module_raises():
    x = torch.randn(8, 16, 2, 2)
    before = x.clone()
    with pytest.raises(RuntimeError, match='boom'):
        with torch.no_grad(), shifted_in_place(x, ShiftSpec.of(4, 2)):
            assert not torch.equal(x, before)
            raise RuntimeError('boom')
    assert torch.equal(x, before)


def test_only_without_autograd_and_for_viewable_frames():
    x = torch.randn(8, 16, 2, 2)
    spec = ShiftSpec.of(4, 2)
    # autograd on: the conv may keep its input
    assert choose(x, spec, in_place=True).strategy == 'copy'
    with torch.no_grad():
        assert choose(x, spec, in_place=True).strategy == 'in_place'
        # a strided view cannot be shifted in place
        assert choose(x[:, ::2], spec, in_place=True).strategy == 'copy'
        assert choose(x, spec).strategy == 'copy'  # nor without the caller's permission


def test_the_public_op_and_default_module_never_touch_the_input():
    x = torch.randn(8, 16, 2, 2)
    before = x.clone()
    with torch.no_grad():
        temporal_shift(x, 4)
        TemporalShift(nn.Identity(), 4)(x)
    assert torch.equal(x, before)
    assert not TemporalShift(nn.Identity(), 4).inplace


@pytest.mark.slow
@pytest.mark.parametrize('shift_place', ['blockres', 'block'])
def test_backbone_inference_equals_the_copying_shift(shift_place):
    model = ResNetTSM(50, num_segments=4, shift_place=shift_place, out_indices=(0, 1, 2, 3))
    model.init_weights()
    model.eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        fast = model(x)
        for module in model.modules():
            if isinstance(module, TemporalShift):
                assert module.inplace
                module.inplace = False
        plain = model(x)
    for a, b in zip(fast, plain):
        assert torch.equal(a, b)  # stage outputs returned to the caller are restored too


def _no_inplace(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, TemporalShift):
            module.inplace = False


@pytest.mark.slow
@pytest.mark.parametrize('with_cp', [False, True])
@pytest.mark.parametrize('channels_last', [False, True])
def test_training_step_equals_the_copying_shift(with_cp, channels_last):
    """The fused shift + conv of training shifts the block input in place: outputs and every
    gradient are those of the copying shift, bit for bit, and autograd's checks pass."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    fast = ResNetTSM(18, num_segments=4, with_cp=with_cp, pretrained=None)
    fast.init_weights()
    slow = ResNetTSM(18, num_segments=4, with_cp=with_cp, pretrained=None)
    slow.load_state_dict(fast.state_dict())
    _no_inplace(slow)
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=fmt)
    grads = []
    for model in (fast, slow):
        model.to(memory_format=fmt).train()
        xi = x.clone().requires_grad_()
        out = model(xi)
        out.backward(torch.ones_like(out) + out.detach())
        grads.append((out.detach(), xi.grad, [p.grad for p in model.parameters()]))
    (out_a, gx_a, gp_a), (out_b, gx_b, gp_b) = grads
    assert torch.equal(out_a, out_b)
    assert torch.equal(gx_a, gx_b)
    assert all(torch.equal(a, b) for a, b in zip(gp_a, gp_b))


def test_fused_in_place_restores_the_input_and_shifts_the_gradient():
    conv = nn.Conv2d(16, 8, 1, bias=False)
    x = torch.randn(8, 16, 3, 3)
    before = x.clone()
    leaf = x.clone().requires_grad_()
    inner = leaf * 1  # not a leaf: the module may use it in place, as in a backbone
    out = TemporalShift(conv, 4, shift_div=4, inplace=True)(inner)
    assert torch.equal(inner.detach(), before)  # restored after the forward
    grad = torch.randn_like(out)
    out.backward(grad)
    assert torch.equal(inner.detach(), before)  # and after the backward
    ref_leaf = before.clone().requires_grad_()
    ref = conv(temporal_shift(ref_leaf, 4, 4))
    ref.backward(grad)
    assert torch.equal(out.detach(), ref.detach())
    assert torch.equal(leaf.grad, ref_leaf.grad)
