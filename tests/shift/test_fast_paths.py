"""The fast paths of the shift and of ResNetTSM equal the plain reference: each memory
format, autocast, and ``torch.compile(fullgraph=True)``."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from tsmnet import ResNetTSM, TemporalShift, temporal_shift
from tsmnet.shift import temporal_shift_reference

T = 4


def _layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same values as ``x`` ``[N, C, H, W]`` in contiguous, channels-last and other
    strides."""
    return {
        'contiguous': x.contiguous(),
        'channels_last': x.contiguous(memory_format=torch.channels_last),
        'transposed_hw': x.transpose(2, 3).contiguous().transpose(2, 3),
        'strided_channels': torch.stack([x, x], dim=2).flatten(1, 2)[:, ::2],
    }


@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
@pytest.mark.parametrize('grad', [False, True])
def test_shift_in_every_layout_equals_reference(mode: str, grad: bool,
                                                device: torch.device) -> None:
    x = torch.randn(3 * T, 24, 5, 3, device=device)
    expected = temporal_shift_reference(x, T, 8, mode)
    for name, xl in _layouts(x).items():
        xl = xl.detach().requires_grad_(grad)
        out = temporal_shift(xl, T, 8, mode)
        assert torch.equal(out, expected), name
        if name in ('contiguous', 'channels_last'):
            assert out.stride() == xl.stride(), f'{name}: memory format not kept'
        if grad:
            g = torch.randn_like(out)
            out.backward(g)
            ref = x.detach().requires_grad_()
            temporal_shift_reference(ref, T, 8, mode).backward(g)
            assert torch.equal(xl.grad, ref.grad), name


def _relative_error(out: torch.Tensor, exact: torch.Tensor) -> float:
    """The error of ``out`` against a float64 ``exact``, relative to its size (norms)."""
    return ((out.double() - exact).norm() / exact.norm()).item()


@pytest.mark.slow
@pytest.mark.parametrize('train', [False, True])
def test_every_layout_of_the_model_equals_float64(train: bool) -> None:
    """Contiguous and channels-last ResNetTSM (outputs, and in training every gradient), each
    against a float64 run of the same weights, not against each other.

    The training gradients are taken with ``norm_eval=True``: the shifts run their training
    strategies while the batch norms use running statistics. Backward through train-mode batch
    statistics is ill conditioned in fp32 on small maps, and by how much depends on the CPU's
    vector kernels: on this input PyTorch's own gradients (no shift at all) reach 1e-2 of the
    float64 ones with ``ATEN_CPU_CAPABILITY=avx2``, 3e-6 with ``default`` (DESIGN.md, "Machines
    differ"). Here both layouts stay near 1e-6 under default, avx2, avx512 and oneDNN AVX2.
    """
    torch.manual_seed(0)
    exact = ResNetTSM(18, num_segments=T, pretrained=None, norm_eval=train).double()
    exact.train(train)
    x = torch.randn(4 * T, 3, 32, 32, dtype=torch.float64)
    out64 = exact(x)
    weights = torch.randn_like(out64)  # a loss whose gradient is not tied to the output
    if train:
        (out64 * weights).sum().backward()
    for layout in (torch.contiguous_format, torch.channels_last):
        model = ResNetTSM(18, num_segments=T, pretrained=None, norm_eval=train).train(train)
        model.load_state_dict(exact.state_dict())
        model.to(memory_format=layout)
        out = model(x.float().contiguous(memory_format=layout))
        assert out.is_contiguous(memory_format=layout)
        assert _relative_error(out, out64) < 1e-5, layout
        if not train:
            continue
        (out * weights.float()).sum().backward()
        for (name, p), p64 in zip(model.named_parameters(), exact.parameters()):
            assert _relative_error(p.grad, p64.grad) < 1e-4, (layout, name)


@pytest.mark.slow
def test_train_mode_batch_norm_output_of_every_layout_equals_float64() -> None:
    """The forward of train-mode batch norms (batch statistics) is well conditioned: both
    layouts' outputs equal float64."""
    torch.manual_seed(0)
    exact = ResNetTSM(18, num_segments=T, pretrained=None).double().train()
    x = torch.randn(2 * T, 3, 32, 32, dtype=torch.float64)
    out64 = exact(x)
    for layout in (torch.contiguous_format, torch.channels_last):
        model = ResNetTSM(18, num_segments=T, pretrained=None).train()
        model.load_state_dict(exact.state_dict())
        model.to(memory_format=layout)
        out = model(x.float().contiguous(memory_format=layout))
        assert _relative_error(out, out64) < 1e-5, layout


@pytest.mark.slow
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_training_step_gives_every_parameter_a_gradient(dtype: torch.dtype) -> None:
    model = ResNetTSM(18, num_segments=T, pretrained=None).train()
    x = torch.randn(2 * T, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)  # fp32, same BN statistics as the autocast run below (train mode)
    with torch.autocast('cpu', dtype=dtype):
        out = model(x)
    assert out.dtype == dtype
    error = (out.float() - expected).norm() / expected.norm()  # relative, over the whole map
    assert error < (0.1 if dtype == torch.bfloat16 else 0.01), error  # 8 vs 11 mantissa bits
    out.float().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.isfinite().all(), name


@pytest.mark.slow
def test_compiled_model_fullgraph_matches_eager() -> None:
    """No graph break in the whole backbone (fullgraph=True raises on one); eval and train
    outputs and the gradients equal eager."""
    torch._dynamo.reset()
    model = ResNetTSM(18, num_segments=T, pretrained=None)
    x = torch.randn(2 * T, 3, 32, 32)
    compiled = torch.compile(model, fullgraph=True, backend='aot_eager')
    with torch.no_grad():
        torch.testing.assert_close(compiled.eval()(x), model.eval()(x), rtol=1e-5, atol=1e-5)
    model.train()
    out = compiled(x)
    out.mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model(x).mean().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
def test_inductor_compiled_shift_conv_matches_eager(mode: str) -> None:
    """The shift followed by a conv through inductor (generated kernels), two batch sizes."""
    torch._dynamo.reset()
    module = TemporalShift(nn.Conv2d(16, 8, 1, bias=False), T, 8, mode)
    compiled = torch.compile(module, fullgraph=True)
    for clips in (1, 3):
        x = torch.randn(clips * T, 16, 4, 4, requires_grad=True)
        out = compiled(x)
        expected = module.net(temporal_shift_reference(x, T, 8, mode))
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
        (g,) = torch.autograd.grad(out.sum(), x)
        (g_ref,) = torch.autograd.grad(expected.sum(), x)
        torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('backend', ['auto', 'native', 'torch'])
def test_compiled_graph_holds_the_chosen_shift(backend: str) -> None:
    """Under torch.compile ``auto`` on the CPU traces the functional backend's pointwise
    gather (no opaque op, which inductor would wrap in layout conversions); a forced backend
    keeps its registered op. Outputs and gradients equal the loop."""
    from torch._dynamo.testing import CompileCounterWithBackend

    from tsmnet.shift import native, use_backend

    if backend == 'native' and native.kernels() is None:
        pytest.skip(f'no native kernels here: {native.why_not()}')
    torch._dynamo.reset()
    counter = CompileCounterWithBackend('aot_eager')
    fn = torch.compile(lambda v: temporal_shift(v, T, 8), fullgraph=True, backend=counter)
    x = torch.randn(2 * T, 16, 3, 3, requires_grad=True)
    with use_backend(backend):
        out = fn(x)
    assert torch.equal(out, temporal_shift_reference(x, T, 8))
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, x, g)
    ref = x.detach().requires_grad_()
    temporal_shift_reference(ref, T, 8).backward(g)
    assert torch.equal(grad, ref.grad)
    code = counter.graphs[0].code
    if backend == 'auto':
        assert 'torch.ops.tsmnet' not in code and 'torch.where' in code, code
        assert 'torch.cat' not in code, code
    else:
        assert f'torch.ops.tsmnet.{backend}_shift' in code, code


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
def test_inductor_fuses_the_shift_in_the_input_layout(mode: str) -> None:
    """ReLU then the shift through inductor: one generated loop, no tsmnet op, the input's
    memory format kept (contiguous and channels-last), and exactly the loop's numbers."""
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    fn = torch.compile(lambda v: temporal_shift(torch.relu(v), T, 8, mode), fullgraph=True)
    x = torch.randn(2 * T, 16, 5, 3)
    expected = temporal_shift_reference(torch.relu(x), T, 8, mode)
    for xl in (x, x.contiguous(memory_format=torch.channels_last)):
        with torch.no_grad():
            out, (code, *_) = run_and_get_code(fn, xl)
        assert torch.equal(out, expected)
        assert out.stride() == xl.stride()
        assert 'torch.ops.tsmnet' not in code, code
        assert len(re.findall(r'^cpp_fused\w* = ', code, re.M)) == 1, code
    assert 'torch.cat' not in code, code
