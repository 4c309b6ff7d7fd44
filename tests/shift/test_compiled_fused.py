"""Under ``torch.compile`` a shift site that may work in place and feeds a plain conv is the
native backend's ``tsmnet::shift_conv2d`` op: the input shifted in place around the conv and
restored. Its numbers and gradients are the loop's, the input comes back bit for bit (also
when the conv raises), hooks still get a copy, and inductor lays its tensors out
channels-last like its own convs."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from tsmnet import ResNetTSM, TemporalShift
from tsmnet.shift import native, temporal_shift_reference, use_backend

T = 4
CONVS = {
    '1x1': lambda: nn.Conv2d(16, 8, 1, bias=False),
    '3x3, stride 2, bias': lambda: nn.Conv2d(16, 12, 3, stride=2, padding=1),
    '3x3, 2 groups, dilation 2': lambda: nn.Conv2d(16, 8, 3, padding=2, dilation=2, groups=2,
                                                   bias=False),
}


@pytest.fixture(autouse=True)
def kernels():
    if native.kernels() is None:
        pytest.skip(f'native kernels unavailable here: {native.why_not()}')
    torch._dynamo.reset()


def _compiled(module: nn.Module):
    """``module`` compiled with the graph-recording backend, and the graphs it records."""
    from torch._dynamo.testing import CompileCounterWithBackend

    counter = CompileCounterWithBackend('aot_eager')
    return torch.compile(module, fullgraph=True, backend=counter), counter.graphs


def _frames(clips: int, channels_last: bool) -> torch.Tensor:
    x = torch.randn(clips * T, 16, 6, 5)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.slow
@pytest.mark.parametrize('conv', list(CONVS))
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
@pytest.mark.parametrize('channels_last', [False, True])
def test_compiled_in_place_site_is_the_fused_op(conv, mode, channels_last):
    """Outputs and the gradients of the input, weight and bias equal the loop's, for two
    batch sizes; the input is left as it was; the graph holds the op and no copy."""
    module = TemporalShift(CONVS[conv](), T, 8, mode, inplace=True)
    compiled, graphs = _compiled(module)
    params = list(module.net.parameters())
    for clips in (1, 3):
        x = _frames(clips, channels_last).requires_grad_()
        before = x.detach().clone()
        out = compiled(x)
        expected = module.net(temporal_shift_reference(x, T, 8, mode))
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        assert torch.equal(x.detach(), before)
        g = torch.randn_like(out)
        got = torch.autograd.grad(out, [x, *params], g)
        want = torch.autograd.grad(expected, [x, *params], g)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        assert torch.equal(x.detach(), before)
    code = graphs[0].code
    assert 'torch.ops.tsmnet.shift_conv2d' in code, code
    assert 'torch.where' not in code and 'torch.cat' not in code, code


def test_compiled_site_with_a_hook_copies_and_the_hook_sees_the_shifted_input():
    """A pre-forward hook on the conv may keep its input: the compiled graph copies (the
    gather), and the kept tensor is the shifted frames, also after the forward."""
    module = TemporalShift(nn.Conv2d(16, 8, 1, bias=False), T, 8, inplace=True)
    kept = []
    module.net.register_forward_pre_hook(lambda m, args: kept.append(args[0]))
    compiled, graphs = _compiled(module)
    x = _frames(2, False)
    with torch.no_grad():
        compiled(x)
    assert 'shift_conv2d' not in graphs[0].code
    assert torch.equal(kept[-1], temporal_shift_reference(x, T, 8))


def test_without_permission_or_with_a_forced_backend_the_site_copies():
    """``inplace=False`` (the caller's input may be read elsewhere) and a forced backend other
    than native compile the copying shift, not the fused op."""
    x = _frames(2, False)
    for module, backend in ((TemporalShift(nn.Conv2d(16, 8, 1), T, 8), 'auto'),
                            (TemporalShift(nn.Conv2d(16, 8, 1), T, 8, inplace=True), 'torch')):
        torch._dynamo.reset()
        compiled, graphs = _compiled(module)
        with use_backend(backend), torch.no_grad():
            out = compiled(x)
        assert 'shift_conv2d' not in graphs[0].code
        torch.testing.assert_close(out, module.net(temporal_shift_reference(x, T, 8)))


def test_the_op_restores_its_input_when_the_conv_raises():
    x = _frames(1, True)
    before = x.clone()
    wrong = torch.randn(8, 3, 1, 1)  # 3 input channels, x has 16
    with pytest.raises(RuntimeError):
        torch.ops.tsmnet.shift_conv2d(x, wrong, None, [1, 1], [0, 0], [1, 1], 1, T, 2, [1, -1])
    assert torch.equal(x, before)


@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_ops_pass_opcheck(channels_last):
    x = _frames(2, channels_last)
    w = torch.randn(8, 16, 3, 3)
    b = torch.randn(8)
    args = (x, w, b, [1, 1], [1, 1], [1, 1], 1, T, 2, [1, -1])
    torch.library.opcheck(torch.ops.tsmnet.shift_conv2d.default, args)
    torch.library.opcheck(torch.ops.tsmnet.shift_conv2d.default,
                          (x.requires_grad_(), w.requires_grad_(), None, *args[3:]))
    grad = torch.randn(2 * T, 8, 6, 5)
    torch.library.opcheck(torch.ops.tsmnet.shift_conv2d_backward.default,
                          (grad, x.detach(), w.detach(), [1, 1], [1, 1], [1, 1], 1, T, 2, [-1]))


def _strides(code: str, name: str) -> tuple[int, ...]:
    """The strides of buffer ``name`` in inductor's generated wrapper: from its allocation,
    its stride check, or the buffer it reuses."""
    for made in (rf'\b{name} = empty_strided_cpu\(\([^)]*\), \(([^)]*)\)',
                 rf'\b{name} = reinterpret_tensor\(\w+, \([^)]*\), \(([^)]*)\)',
                 rf'assert_size_stride\({name}, \([^)]*\), \(([^)]*)\)'):
        match = re.search(made, code)
        if match:
            return tuple(int(s) for s in match.group(1).split(',') if s.strip())
    reuse = re.search(rf'\b{name} = (\w+); del \1  # reuse', code)
    assert reuse, (name, code)
    return _strides(code, reuse.group(1))


@pytest.mark.slow
def test_inductor_lays_out_the_fused_op_like_its_convs():
    """Through inductor, a conv, a ReLU, then an in-place site with a 3x3 conv: the op gets
    the ReLU output and the weight channels-last (as inductor gives its own CPU convs, so no
    conversion before it and no slow conversion of the weight inside it), and the numbers
    equal eager."""
    from torch._inductor.utils import run_and_get_code

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                          TemporalShift(nn.Conv2d(16, 16, 3, padding=1), T, 8, inplace=True))
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(2 * T, 3, 6, 6)
    with torch.no_grad():
        out, (code, *_) = run_and_get_code(compiled, x)
        expected = model[2].net(temporal_shift_reference(model[1](model[0](x)), T, 8))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    call = re.search(r'= torch\.ops\.tsmnet\.shift_conv2d\.default\((\w+), (\w+),', code)
    assert call, code
    frames, weight = (_strides(code, name) for name in call.groups())
    assert frames == (16 * 36, 1, 16 * 6, 16), code  # channels-last [8, 16, 6, 6]
    assert weight == (16 * 9, 1, 16 * 3, 16), code  # channels-last [16, 16, 3, 3]


@pytest.mark.slow
def test_compiled_resnet_tsm_trains_like_eager_through_inductor():
    """ResNet-18-TSM through inductor: eval outputs, a train step's loss and every gradient
    equal eager; the 8 blockres sites are the fused op."""
    from torch._inductor.utils import run_and_get_code

    torch.manual_seed(0)
    model = ResNetTSM(18, num_segments=T, pretrained=None)
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(2 * T, 3, 32, 32)
    with torch.no_grad():
        out, (code, *_) = run_and_get_code(compiled.eval(), x)
        torch.testing.assert_close(out, model(x), rtol=1e-4, atol=1e-4)
    assert code.count('torch.ops.tsmnet.shift_conv2d.default(') == 8, code
    model.train()
    compiled(x).square().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model(x).square().mean().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-3, atol=1e-5, msg=n)
