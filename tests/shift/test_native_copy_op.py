"""The native copy as eager code calls it: ``tsmnet::shift_copy`` differentiates itself in C++
(the opposite shift, forward AD too), and ``temporal_shift``'s hot path calls it from its own
binding, answered once per signature. Both must keep what a call through ``torch.ops`` gives:
gradients of any order, tangents, dispatch and function modes, the profiler, and the
arguments' checks on every new signature."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import forward_ad as fwAD
from torch.autograd import gradcheck, gradgradcheck
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from tsmnet.shift import native, temporal_shift, use_backend
from tsmnet.shift.op import temporal_shift_reference

T = 4


@pytest.fixture(autouse=True)
def kernels():
    if native.kernels() is None:
        pytest.skip(f'the native kernels are unavailable here: {native.why_not()}')


def frames(layout: str = 'contiguous', dtype: torch.dtype = torch.float64) -> torch.Tensor:
    x = torch.randn(2 * T, 16, 3, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    return x.contiguous(memory_format=torch.channels_last) if layout == 'channels_last' else x


def op(x: torch.Tensor) -> torch.Tensor:
    return torch.ops.tsmnet.shift_copy(x, T, 2, [1, -1])


@pytest.mark.quick_only('contiguous')
@pytest.mark.parametrize('layout', ['contiguous', 'channels_last'])
def test_the_op_passes_gradcheck_with_forward_ad_and_gradgradcheck(layout):
    x = frames(layout).requires_grad_()
    assert gradcheck(op, (x,), check_forward_ad=True)
    assert gradgradcheck(op, (x,), check_fwd_over_rev=True, check_rev_over_rev=True)


@pytest.mark.parametrize('layout', ['contiguous', 'channels_last'])
def test_temporal_shift_takes_the_cpp_autograd_and_matches_the_reference(layout):
    x = frames(layout).requires_grad_()
    out = temporal_shift(x, T, 8)
    assert type(out.grad_fn).__name__ == 'CppFunction'  # not a Python autograd.Function
    assert out.is_contiguous(memory_format=torch.channels_last) == (layout == 'channels_last')
    ref_x = x.detach().clone().requires_grad_()
    ref = temporal_shift_reference(ref_x, T, 8)
    assert torch.equal(out, ref)
    # a gradient that comes strided (transposed) and one that comes expanded (a sum)
    grad = torch.randn(x.shape[::-1], dtype=x.dtype).permute(3, 2, 1, 0)
    (g,) = torch.autograd.grad(out, x, grad, retain_graph=True)
    (g_ref,) = torch.autograd.grad(ref, ref_x, grad)
    assert torch.equal(g, g_ref)
    (g,) = torch.autograd.grad(out.sum(), x)
    (g_ref,) = torch.autograd.grad(temporal_shift_reference(ref_x, T, 8).sum(), ref_x)
    assert torch.equal(g, g_ref)


def test_double_backward_through_temporal_shift_equals_the_reference():
    w = torch.randn(16, 1, 1, dtype=torch.float64)
    x = frames().requires_grad_()

    def penalty(shift):
        y = shift(x, T, 8)
        (g,) = torch.autograd.grad((y.square() * w).sum(), x, create_graph=True)
        return torch.autograd.grad(g.pow(3).sum(), x)[0]

    assert torch.allclose(penalty(temporal_shift), penalty(temporal_shift_reference))


@pytest.mark.parametrize('backend', ['auto', 'torch', 'functional'])
def test_forward_ad_tangents_are_shifted_on_every_backend(backend):
    x, tangent = frames(), frames().flip(0)
    with use_backend(backend), fwAD.dual_level():
        out = temporal_shift(fwAD.make_dual(x.clone().requires_grad_(), tangent), T, 8)
        primal, out_tangent = fwAD.unpack_dual(out)
    assert torch.equal(primal, temporal_shift_reference(x, T, 8))
    assert out_tangent is not None
    assert torch.equal(out_tangent, temporal_shift_reference(tangent, T, 8))


def test_the_hot_path_is_seen_by_dispatch_and_function_modes_and_the_profiler():
    x = frames(dtype=torch.float32)
    temporal_shift(x, T, 8)  # the signature is known: what follows takes the hot path

    class Recording:
        def __init__(self):
            super().__init__()
            self.seen = []

        def record(self, func, args, kwargs):
            self.seen.append(str(func))
            return func(*args, **(kwargs or {}))

    class Functions(Recording, TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return self.record(func, args, kwargs)

    class Ops(Recording, TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return self.record(func, args, kwargs)

    with Functions() as functions:
        out = temporal_shift(x, T, 8)
    assert 'tsmnet.shift_copy.default' in functions.seen
    with Ops() as ops:
        again = temporal_shift(x, T, 8)
    assert ops.seen == ['tsmnet.shift_copy.default'] and torch.equal(again, out)
    with torch.profiler.profile() as prof:
        temporal_shift(x, T, 8)
    assert 'tsmnet::shift_copy' in {e.name for e in prof.events()}


def test_a_known_signature_still_gets_each_tensors_checks():
    x = frames(dtype=torch.float32)
    temporal_shift(x, T, 8)
    # same shape, strides and dtype, but a negative view: its bytes are not its values
    neg = torch._neg_view(x)
    assert torch.equal(temporal_shift(neg, T, 8), temporal_shift_reference(-x, T, 8))
    with pytest.raises(ValueError, match='num_segments'):
        temporal_shift(x, 3, 8)
    with pytest.raises(ValueError, match='mode'):
        temporal_shift(x, T, 8, 'casual')
    # arguments that cannot key the cache get the checks' errors, not a hashing error
    with pytest.raises((TypeError, ValueError), match='num_segments'):
        temporal_shift(x, [T], 8)
    with pytest.raises((TypeError, ValueError), match='mode'):
        temporal_shift(x, T, 8, ['bidirectional'])
