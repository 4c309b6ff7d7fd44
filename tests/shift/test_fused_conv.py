"""The fused shift + conv of training (tsmnet.shift.fused): the numbers of the plain pair, less
memory kept for backward, and taken only where it is the same computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsmnet import ResNetTSM, TemporalShift
from tsmnet.benchmark import saved_bytes  # the counter the benchmark reports
from tsmnet.shift import can_fuse, temporal_shift_reference

T = 4
CONVS = {
    '1x1': dict(in_channels=16, out_channels=8, kernel_size=1, bias=False),
    '3x3-stride2-bias': dict(in_channels=16, out_channels=12, kernel_size=3, stride=2,
                             padding=1, bias=True),
    'grouped-dilated': dict(in_channels=16, out_channels=8, kernel_size=3, padding=2,
                            dilation=2, groups=2, bias=True),
}
FORMATS = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}


def _saved_storages(fn) -> list[int]:
    """data_ptr of every storage autograd saves while ``fn()`` runs."""
    seen: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen.append(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return seen


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('conv', CONVS)
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
def test_fused_equals_shift_then_conv(mode: str, conv: str, fmt: str,
                                      device: torch.device) -> None:
    layer = nn.Conv2d(**CONVS[conv]).to(device, memory_format=FORMATS[fmt])
    x = torch.randn(2 * T, 16, 7, 7, device=device).contiguous(memory_format=FORMATS[fmt])
    module = TemporalShift(layer, T, 4, mode)
    xa = x.clone().requires_grad_()
    out = module(xa)
    assert type(out.grad_fn).__name__ == 'ShiftConv2dFunctionBackward'
    grad = torch.randn_like(out)
    out.backward(grad)
    fused_grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    xb = x.clone().requires_grad_()
    expected = layer(temporal_shift_reference(xb, T, 4, mode))
    expected.backward(grad)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=1e-6)
    for a, b in zip(fused_grads, [p.grad for p in layer.parameters()]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert out.is_contiguous(memory_format=FORMATS[fmt])


def test_fused_gradcheck_float64() -> None:
    """Gradients of input, weight and bias against finite differences, and the gradients
    of the gradients (the backward is differentiable). The weight and bias are the module's
    own parameters (gradcheck perturbs them in place): plain tensors swapped in by
    ``functional_call`` are not plain parameters, and the fused path is not taken for them."""
    module = TemporalShift(nn.Conv2d(8, 6, 3, padding=1).double(), T, 4)
    x = torch.randn(2 * T, 8, 3, 3, dtype=torch.float64, requires_grad=True)

    def fn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        out = module(x)
        assert type(out.grad_fn).__name__ == 'ShiftConv2dFunctionBackward'
        return out

    inputs = (x, module.net.weight, module.net.bias)
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)


def test_fused_keeps_the_unshifted_input_not_a_copy() -> None:
    layer = nn.Conv2d(16, 8, 1, bias=False)
    x = torch.randn(2 * T, 16, 5, 5, requires_grad=True)
    fused = _saved_storages(lambda: TemporalShift(layer, T)(x))
    assert sorted(fused) == sorted({x.untyped_storage().data_ptr(),
                                    layer.weight.untyped_storage().data_ptr()})
    plain = _saved_storages(lambda: layer(temporal_shift_reference(x, T)))
    assert x.untyped_storage().data_ptr() not in plain  # the plain pair keeps a shifted copy


def test_not_fused_where_it_would_change_behaviour() -> None:
    x = torch.randn(2 * T, 16, 5, 5, requires_grad=True)

    class MyConv(nn.Conv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    assert not can_fuse(MyConv(16, 8, 1))
    assert not can_fuse(nn.Conv2d(16, 8, 3, padding=1, padding_mode='reflect'))
    assert not can_fuse(nn.Conv2d(16, 8, 3, padding='same'))
    assert not can_fuse(nn.Sequential(nn.Conv2d(16, 8, 1)))
    module = TemporalShift(MyConv(16, 8, 1), T)
    torch.testing.assert_close(module(x), module.net(temporal_shift_reference(x, T)))
    # a forward hook on the conv must still run: no fusion then
    layer = nn.Conv2d(16, 8, 1)
    calls = []
    layer.register_forward_hook(lambda *args: calls.append(1))
    out = TemporalShift(layer, T)(x)
    assert calls and type(out.grad_fn).__name__ == 'ConvolutionBackward0'
    with torch.no_grad():  # nothing to save: the plain pair
        assert TemporalShift(nn.Conv2d(16, 8, 1), T)(x).grad_fn is None


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_fused_under_autocast_equals_the_plain_pair(dtype: torch.dtype) -> None:
    layer = nn.Conv2d(16, 8, 3, padding=1)
    x = torch.randn(2 * T, 16, 6, 6, requires_grad=True)
    with torch.autocast('cpu', dtype=dtype):
        out = TemporalShift(layer, T)(x)
    assert type(out.grad_fn).__name__ == 'ShiftConv2dFunctionBackward'
    out.float().sum().backward()
    fused = (out, x.grad.clone(), layer.weight.grad.clone())
    x.grad, layer.weight.grad = None, None
    with torch.autocast('cpu', dtype=dtype):
        expected = layer(temporal_shift_reference(x, T))
    expected.float().sum().backward()
    assert out.dtype == expected.dtype == dtype
    torch.testing.assert_close(fused[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(fused[1], x.grad, rtol=0, atol=0)
    torch.testing.assert_close(fused[2], layer.weight.grad, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize('depth', [18, 50])
def test_resnet_tsm_saves_no_more_than_the_network_without_shift(depth: int) -> None:
    """blockres keeps no shifted copy: the saved activations are those of the plain ResNet."""
    x = torch.randn(T, 3, 32, 32)
    tsm = ResNetTSM(depth, num_segments=T, pretrained=None)
    plain = ResNetTSM(depth, num_segments=T, pretrained=None, is_shift=False)
    assert saved_bytes(tsm, x) == saved_bytes(plain, x)


@pytest.mark.slow
def test_memory_against_mmaction(mmaction_models) -> None:
    x = torch.randn(2 * T, 3, 32, 32)
    ours = ResNetTSM(50, num_segments=T, pretrained=None)
    ref = mmaction_models.ResNetTSM(50, num_segments=T, pretrained=None)
    ref.load_state_dict(ours.state_dict())
    ratio = saved_bytes(ours, x) / saved_bytes(ref, x)
    assert ratio <= 0.85, ratio


def test_apply_positional_is_function_apply_without_the_binding():
    """The fused site's apply skips Function.apply's per-call signature binding, and only
    that: same output, gradients and node; under a torch.func transform it is apply itself."""
    from tsmnet._torch_compat import apply_positional
    from tsmnet.shift import native, torch_ops
    from tsmnet.shift.autograd import ShiftConv2dFunction, ShiftFunction
    from tsmnet.shift.spec import ShiftSpec

    backend = native if native.kernels() is not None else torch_ops
    spec = ShiftSpec.of(T, 2)
    x = torch.randn(2 * T, 16, 3, 3, dtype=torch.float64)
    w = torch.randn(8, 16, 3, 3, dtype=torch.float64)
    conf = (spec, backend, (1, 1), (1, 1), (1, 1), 1, True)
    runs = []
    for apply in (ShiftConv2dFunction.apply,
                  lambda *a: apply_positional(ShiftConv2dFunction, *a)):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        out = apply(xi, wi, None, *conf)
        out.backward(torch.ones_like(out))
        runs.append((out.detach(), xi.grad, wi.grad, type(out.grad_fn).__name__))
    for got, want in zip(runs[1], runs[0]):
        assert got == want if isinstance(got, str) else torch.equal(got, want)
    assert runs[1][3] == 'ShiftConv2dFunctionBackward'
    grad = torch.func.grad(lambda a: apply_positional(ShiftFunction, a, spec, backend).sum())(x)
    ref = x.clone().requires_grad_()
    temporal_shift_reference(ref, T, 8).sum().backward()
    assert torch.equal(grad, ref.grad)
