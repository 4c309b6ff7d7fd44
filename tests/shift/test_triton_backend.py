"""The Triton backend against the plain loop: layouts, modes, dtypes, odd shapes, gradients,
the in-place shift and its undo, and the registered ops (``torch.library.opcheck``).

On a machine without a GPU the kernels run on CPU tensors through Triton's interpreter
(``TRITON_INTERPRET=1``, set by ``tests/conftest.py``): slow, so the shapes stay small. With
``TSMNET_TEST_DEVICE=cuda`` the same tests run the compiled kernels on the GPU.
"""

from __future__ import annotations

import pytest
import torch

from tsmnet import TemporalShift, temporal_shift
from tsmnet.shift import (
    ShiftSpec,
    choose,
    explain,
    shifted_in_place,
    temporal_shift_reference,
    triton_kernels,
    use_backend,
)

pytestmark = pytest.mark.skipif(
    triton_kernels.triton is None, reason='triton is not installed (it is in the test extra)')

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# (clips, T, C, H, W, shift_div): odd channels and pixels, T=1, a fold of one channel
SHAPES = ((2, 3, 17, 3, 5, 4), (1, 1, 8, 2, 2, 8), (3, 4, 9, 1, 3, 8), (1, 5, 32, 4, 4, 8))


@pytest.fixture
def on_triton(device: torch.device) -> torch.device:
    if triton_kernels.status():
        pytest.fail(f'the Triton backend should run here: {triton_kernels.status()}')
    return device


def _frames(shape, dtype, channels_last, device):
    clips, t, c, h, w, _ = shape
    x = (torch.randn(clips * t, c, h, w) * 10).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    return x.to(device)


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
@pytest.mark.parametrize('dtype', DTYPES)
def test_copy_and_in_place_equal_the_plain_loop(on_triton, dtype, mode, channels_last):
    for shape in SHAPES:
        t, div = shape[1], shape[5]
        x = _frames(shape, dtype, channels_last, on_triton)
        expected = temporal_shift_reference(x, t, div, mode)
        with use_backend('triton'):
            out = temporal_shift(x, t, div, mode)
            assert torch.equal(out, expected), shape
            assert out.stride() == x.stride(), 'memory format not kept'
            before = x.clone()
            spec = ShiftSpec.of(t, x.shape[1] // div, mode)
            with torch.no_grad(), shifted_in_place(x, spec):
                assert torch.equal(x, expected), shape
            assert torch.equal(x, before), 'the undo must restore x bit for bit'


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
def test_gradient_is_the_opposite_shift(on_triton, mode, channels_last):
    shape = SHAPES[0]
    x = _frames(shape, torch.float32, channels_last, on_triton).requires_grad_()
    grad = torch.randn_like(x)
    with use_backend('triton'):
        out = temporal_shift(x, shape[1], shape[5], mode)
    out.backward(grad)
    ref = x.detach().clone().requires_grad_()
    temporal_shift_reference(ref, shape[1], shape[5], mode).backward(grad)
    assert torch.equal(x.grad, ref.grad)


def test_module_in_place_inference_and_fused_training(on_triton):
    conv = torch.nn.Conv2d(16, 8, 1, bias=False).to(on_triton)
    module = TemporalShift(conv, 4, shift_div=4, inplace=True)
    x = torch.randn(8, 16, 3, 3, device=on_triton)
    before = x.clone()
    expected = conv(temporal_shift_reference(x, 4, 4))
    with use_backend('triton'):
        with torch.no_grad():
            assert choose(x, ShiftSpec.of(4, 4), in_place=True, net=conv).strategy == 'in_place'
            torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)
        assert torch.equal(x, before)
        leaf = x.clone().requires_grad_()
        out = module(leaf * 1)
        assert type(out.grad_fn).__name__ == 'ShiftConv2dFunctionBackward'
        out.sum().backward()
    ref = x.clone().requires_grad_()
    conv.zero_grad()
    conv(temporal_shift_reference(ref, 4, 4)).sum().backward()
    torch.testing.assert_close(leaf.grad, ref.grad, rtol=1e-5, atol=1e-5)


def test_registered_ops_pass_opcheck(on_triton):
    x = torch.randn(6, 8, 2, 3, device=on_triton)
    for xi in (x, x.contiguous(memory_format=torch.channels_last)):
        torch.library.opcheck(torch.ops.tsmnet.triton_shift.default, (xi, 3, 2, [1, -1]),
                              test_utils=('test_schema', 'test_faketensor'))
        torch.library.opcheck(torch.ops.tsmnet.triton_shift.default,
                              (xi.clone().requires_grad_(), 3, 2, [-1]),
                              test_utils=('test_autograd_registration',))
        torch.library.opcheck(torch.ops.tsmnet.triton_shift_.default, (xi.clone(), 3, 2, [1, -1],
                                                                        True),
                              test_utils=('test_schema', 'test_faketensor'))
        edges = torch.ops.tsmnet.triton_shift_(xi, 3, 2, [1, -1], True)
        torch.library.opcheck(torch.ops.tsmnet.triton_unshift_.default,
                              (xi.clone(), 3, 2, [1, -1], edges),
                              test_utils=('test_schema', 'test_faketensor'))


def test_forced_triton_refuses_what_it_cannot_take(on_triton):
    with use_backend('triton'):
        with pytest.raises(RuntimeError, match="'triton' .*neither contiguous nor channels-last"):
            temporal_shift(torch.randn(4, 16, 2, 4, device=on_triton)[..., ::2], 2)
        with pytest.raises(RuntimeError, match="'triton' .*dtype torch.complex64"):
            temporal_shift(torch.randn(4, 16, 2, 2, dtype=torch.complex64, device=on_triton), 2)


def test_auto_never_takes_the_interpreter_for_cpu_tensors():
    x = torch.randn(4, 16, 2, 2)
    plan = choose(x, ShiftSpec.of(2, 2))
    assert plan.backend != 'triton' and plan.passed_over[0] == 'triton'
    assert 'triton: x is on cpu (not chosen unless forced)' in explain(x, 2)


@pytest.mark.gpu
def test_inductor_keeps_the_triton_op_on_a_gpu():
    """On a GPU, torch.compile(fullgraph=True) of a shift + conv (inductor, the Triton op
    traced into the graph) equals the loop, forward and backward."""
    torch._dynamo.reset()
    conv = torch.nn.Conv2d(16, 8, 1, bias=False).cuda()
    module = TemporalShift(conv, 4, 8)
    compiled = torch.compile(module, fullgraph=True)
    x = torch.randn(8, 16, 5, 5, device='cuda', requires_grad=True)
    out = compiled(x)
    expected = conv(temporal_shift_reference(x, 4, 8))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    (g,) = torch.autograd.grad(out.sum(), x)
    (g_ref,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-4)
