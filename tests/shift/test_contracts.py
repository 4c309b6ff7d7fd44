"""The contracts of the shift's fast paths, over every backend and every strategy.

Each test runs on each backend (``functional``, ``torch``, ``native``, and ``triton`` through
Triton's interpreter, which ``tests/conftest.py`` turns on) and, where a module runs after
the shift, on each strategy the dispatcher can choose: ``copy``, ``in_place`` (shifted in
place and back, inference), ``fused`` and ``fused_in_place`` (training). The oracle is
MMAction2's own slices-and-cat shift (``mmaction_tsm.TemporalShift.shift``) and, for the
backbones, MMAction2's own ResNetTSM and MobileNetV2TSM, in float64.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune
import torch.utils.checkpoint as cp
from parity import randomize
from torch import nn
from torch.func import functional_call, grad, jvp, vjp, vmap

from tsmnet import MobileNetV2TSM, ResNetTSM, TemporalShift, temporal_shift
from tsmnet.shift import (
    BACKENDS,
    ShiftSpec,
    backend_status,
    choose,
    shifted_in_place,
    spec_for,
    use_backend,
)

T = 4
NAMES = list(BACKENDS)
# The strategy, and what sets it up: (grad wanted, module allowed to work in place)
STRATEGIES = {'copy': (False, False), 'in_place': (False, True), 'fused': (True, False),
              'fused_in_place': (True, True)}
IN_PLACE = ('torch', 'native', 'triton')  # the backends that shift in place


@pytest.fixture(params=NAMES)
def backend(request):
    name = request.param
    if backend_status()[name]:
        pytest.skip(f'{name}: {backend_status()[name]}')
    with use_backend(name):
        yield name


def _oracle(mmaction_tsm, x: torch.Tensor, shift_div: int = 4) -> torch.Tensor:
    """MMAction2's shift (bidirectional, slices and cat)."""
    return mmaction_tsm.TemporalShift.shift(x, T, shift_div=shift_div)


def _frames(clips: int = 2, c: int = 8, dtype=torch.float64, channels_last=False):
    x = torch.randn(clips * T, c, 3, 3, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _expected_strategy(name: str, strategy: str) -> str:
    if name == 'functional' and strategy == 'in_place':
        return 'copy'
    if name == 'functional' and strategy == 'fused_in_place':
        return 'fused'
    return strategy


# --------------------------------------------------------------------------- strategies
@pytest.mark.parametrize('strategy', list(STRATEGIES))
@pytest.mark.parametrize('channels_last', [False, True])
def test_every_strategy_equals_the_oracle(mmaction_tsm, backend, strategy, channels_last):
    """Output, input and weight gradients of every strategy equal MMAction2's shift + conv;
    the input comes back bit for bit and its version counter does not move."""
    wants_grad, in_place = STRATEGIES[strategy]
    conv = nn.Conv2d(8, 6, 3, padding=1).double()
    module = TemporalShift(conv, T, 4, inplace=in_place)
    x = _frames(channels_last=channels_last).requires_grad_(wants_grad)
    before, version = x.detach().clone(), x._version
    with torch.set_grad_enabled(wants_grad):
        plan = choose(x, spec_for(x, T, 4, 'bidirectional'), in_place=in_place, net=conv)
        assert plan.strategy == _expected_strategy(backend, strategy), plan
        out = module(x)
    expected = conv(_oracle(mmaction_tsm, x.detach().requires_grad_(wants_grad)))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(x.detach(), before) and x._version == version
    if wants_grad:
        g = torch.randn_like(out)
        x_ref = x.detach().requires_grad_()
        expected = conv(_oracle(mmaction_tsm, x_ref))
        got = torch.autograd.grad(out, [x, conv.weight, conv.bias], g)
        want = torch.autograd.grad(expected, [x_ref, conv.weight, conv.bias], g)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        assert torch.equal(x.detach(), before)


@pytest.mark.slow
@pytest.mark.parametrize('strategy', list(STRATEGIES))
def test_gradgradcheck_of_every_strategy(backend, strategy):
    """The backward of every strategy is itself differentiable (double backward)."""
    wants_grad, in_place = STRATEGIES[strategy]
    conv = nn.Conv2d(4, 3, 1).double()
    module = TemporalShift(conv, T, 4, inplace=in_place)
    x = torch.randn(T, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    if not wants_grad:  # copy and in place: the op alone (in place has no gradient)
        fn = lambda a: temporal_shift(a, T, 4)  # noqa: E731
        assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)
        return
    assert choose(x, spec_for(x, T, 4, 'bidirectional'), in_place=in_place,
                  net=conv).strategy == _expected_strategy(backend, strategy)
    assert torch.autograd.gradgradcheck(lambda a, w, b: module(a),
                                        (x, conv.weight, conv.bias), fast_mode=True)


# --------------------------------------------------------------------------- torch.func
def test_torch_func_over_the_op(mmaction_tsm, backend):
    x = _frames()
    ref = lambda a: _oracle(mmaction_tsm, a)  # noqa: E731
    ours = lambda a: temporal_shift(a, T, 4)  # noqa: E731
    loss = lambda f: (lambda a: f(a).square().sum())  # noqa: E731
    torch.testing.assert_close(grad(loss(ours))(x), grad(loss(ref))(x))
    out, pull = vjp(ours, x)
    v = torch.randn_like(out)
    torch.testing.assert_close(pull(v)[0], vjp(ref, x)[1](v)[0])
    torch.testing.assert_close(jvp(ours, (x,), (v,))[1], ref(v))
    batch = torch.stack([x, 2 * x, -x])
    torch.testing.assert_close(vmap(ours)(batch), vmap(ref)(batch))
    torch.testing.assert_close(vmap(grad(loss(ours)))(batch), vmap(grad(loss(ref)))(batch))
    torch.testing.assert_close(vmap(ours, in_dims=1, out_dims=1)(batch.transpose(0, 1)),
                               vmap(ref)(batch).transpose(0, 1))


@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('inplace', [True, False])
def test_torch_func_over_the_module(mmaction_tsm, backend, train, inplace):
    """``functional_call`` + ``grad`` / ``vmap`` over a TemporalShift around a conv."""
    conv = nn.Conv2d(8, 6, 3, padding=1).double()
    module = TemporalShift(conv, T, 4, inplace=inplace).train(train)
    params = {k: v.detach() for k, v in module.named_parameters()}
    x = _frames()

    def ours(p, a):
        return functional_call(module, p, (a,)).square().sum()

    def ref(p, a):
        return functional_call(conv, {k[4:]: v for k, v in p.items()},
                               (_oracle(mmaction_tsm, a),)).square().sum()

    got, want = grad(ours, argnums=(0, 1))(params, x), grad(ref, argnums=(0, 1))(params, x)
    for k in params:
        torch.testing.assert_close(got[0][k], want[0][k])
    torch.testing.assert_close(got[1], want[1])
    batch = torch.stack([x, -x])
    torch.testing.assert_close(vmap(lambda a: ours(params, a))(batch),
                               vmap(lambda a: ref(params, a))(batch))


def test_functional_call_with_plain_tensors_is_not_fused():
    """Tensors swapped in by ``functional_call`` are not parameters: the fused path, which
    reads ``conv.weight`` itself, is not taken, and their gradients are right."""
    module = TemporalShift(nn.Conv2d(8, 6, 1).double(), T, 4)
    w = torch.randn(6, 8, 1, 1, dtype=torch.float64, requires_grad=True)
    out = functional_call(module, {'net.weight': w}, (_frames(),))
    assert type(out.grad_fn).__name__ == 'ConvolutionBackward0'


# --------------------------------------------------------------------------- backbones
def _backbones(mmaction_models, kind: str):
    if kind == 'resnet':
        kwargs = dict(depth=18, num_segments=T, pretrained=None)
        ref, ours = mmaction_models.ResNetTSM(**kwargs), ResNetTSM(**kwargs)
    else:
        kwargs = dict(num_segments=T, widen_factor=0.5)
        ref, ours = mmaction_models.MobileNetV2TSM(**kwargs), MobileNetV2TSM(**kwargs)
    randomize(ref)
    ours.load_state_dict(ref.state_dict())
    return ref.double(), ours.double()


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['resnet', 'mobilenet'])
def test_double_backward_through_a_training_backbone_equals_mmaction(mmaction_models, kind):
    """A gradient penalty (the gradient of the input gradient's norm) through a training
    backbone: every parameter's gradient equals MMAction2's, float64. The reference's
    batch norms are in train mode too."""
    ref, ours = _backbones(mmaction_models, kind)
    x = torch.randn(T, 3, 32 if kind == 'resnet' else 16, 32 if kind == 'resnet' else 16,
                    dtype=torch.float64)
    grads = []
    for model in (ref, ours):
        model.train()
        a = x.clone().requires_grad_()
        out = model(a)
        out = out[-1] if isinstance(out, tuple) else out
        (g,) = torch.autograd.grad(out.square().mean(), a, create_graph=True)
        model.zero_grad()
        g.square().sum().backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()
                      if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    # Relative to the largest gradient: a bias right before a train-mode batch norm has an
    # exact gradient of zero, so its values are the rounding of much larger terms.
    scale = max(g.abs().max().item() for g in grads[0].values())
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-7, atol=1e-10 * scale,
                                   msg=lambda m, k=k: f'{k}: {m}')


@pytest.mark.slow
@pytest.mark.parametrize('train', [True, False])
def test_torch_func_over_a_backbone_equals_mmaction(mmaction_models, train):
    ref, ours = _backbones(mmaction_models, 'resnet')
    ref.train(train)
    ours.train(train)
    x = torch.randn(T, 3, 32, 32, dtype=torch.float64)
    got, want = ({k: v.detach() for k, v in m.named_parameters()} for m in (ours, ref))
    buffers = [{k: v.clone() for k, v in m.named_buffers()} for m in (ours, ref)]

    def loss(model):  # buffers as arguments: train-mode batch norm updates them in place
        return lambda p, b, a: functional_call(model, {**p, **b}, (a,)).square().mean()

    g_ours, g_ref = grad(loss(ours))(got, buffers[0], x), grad(loss(ref))(want, buffers[1], x)
    for k in g_ref:
        torch.testing.assert_close(g_ours[k], g_ref[k], rtol=1e-7, atol=1e-9, msg=k)
    if not train:  # vmap over clips: eval mode (train-mode batch norm mixes the batch)
        batch = torch.stack([x, 2 * x])
        torch.testing.assert_close(vmap(lambda a: loss(ours)(got, buffers[0], a))(batch),
                                   vmap(lambda a: loss(ref)(want, buffers[1], a))(batch))


# --------------------------------------------------------------------------- versions
def test_every_in_place_backend_bumps_the_version_and_the_primitive_hides_it(backend):
    """A backend's ``shift_`` bumps the counter of the tensor it writes, as PyTorch's own
    in-place ops do; :class:`shifted_in_place` works through ``x.data``, so ``x``'s counter
    does not move, and ``x`` comes back bit for bit."""
    if backend not in IN_PLACE:
        pytest.skip('no in-place shift')
    module = BACKENDS[backend]
    x = _frames(dtype=torch.float32)
    spec = ShiftSpec.of(T, 2)
    before, version = x.clone(), x._version
    undo = module.shift_(x, spec, True)
    assert x._version > version
    undo()
    assert torch.equal(x, before)
    version = x._version
    with torch.no_grad(), shifted_in_place(x, spec, module) as shifted:
        assert shifted.data_ptr() == x.data_ptr()
        assert not torch.equal(x, before)
    assert x._version == version and torch.equal(x, before)


@pytest.mark.slow
@pytest.mark.parametrize('reentrant', [True, False])
@pytest.mark.parametrize('target', ['layer2', 'layer2.0'])
def test_checkpointing_a_stage_or_block(backend, reentrant, target):
    model = ResNetTSM(18, num_segments=T, pretrained=None).train()
    part = model.get_submodule(target)
    y = torch.randn(T, 64, 8, 8, requires_grad=True)  # layer2's input: layer1's 64 channels
    out = cp.checkpoint(part, y, use_reentrant=reentrant)
    out.square().sum().backward()
    got = [y.grad.clone()] + [p.grad.clone() for p in part.parameters()]
    y.grad = None
    part.zero_grad()
    with use_backend('functional'):
        part(y).square().sum().backward()
    want = [y.grad] + [p.grad for p in part.parameters()]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_with_cp_blocks_train_like_without(backend):
    torch.manual_seed(0)
    plain = ResNetTSM(18, num_segments=T, pretrained=None).train()
    with_cp = ResNetTSM(18, num_segments=T, pretrained=None, with_cp=True).train()
    with_cp.load_state_dict(plain.state_dict())
    x = torch.randn(T, 3, 32, 32)
    for model in (plain, with_cp):
        model(x.clone().requires_grad_()).square().mean().backward()
    for (k, a), b in zip(plain.named_parameters(), with_cp.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=k)


def test_inference_tensors_and_leaves(mmaction_tsm, backend):
    """An inference tensor outside inference mode can be neither written nor saved: every
    backend copies it (train and eval). Inside inference mode it is shifted in place and
    restored. A leaf that requires grad, in no_grad, comes back untouched."""
    conv = nn.Conv2d(8, 6, 1).double()
    module = TemporalShift(conv, T, 4, inplace=True)
    with torch.inference_mode():
        x = _frames()
        expected = conv(_oracle(mmaction_tsm, x))
        torch.testing.assert_close(module(x), expected)  # in inference mode: in place
    for train in (True, False):
        with torch.set_grad_enabled(train):
            torch.testing.assert_close(module(x), expected)
            assert choose(x, spec_for(x, T, 4, 'bidirectional'), in_place=True,
                          net=conv).strategy == 'copy'
    leaf = _frames().requires_grad_()
    before, version = leaf.detach().clone(), leaf._version
    with torch.no_grad():
        torch.testing.assert_close(module(leaf), conv(_oracle(mmaction_tsm, before)))
    assert torch.equal(leaf.detach(), before) and leaf._version == version


# --------------------------------------------------------------------------- aliasing
@pytest.mark.parametrize('net', ['identity', 'dropout-eval', 'relu-inplace', 'view'])
def test_in_place_around_a_net_that_aliases_or_writes_its_input(mmaction_tsm, backend, net):
    make = {'identity': nn.Identity, 'dropout-eval': lambda: nn.Dropout().eval(),
            'relu-inplace': lambda: nn.ReLU(inplace=True),
            'view': lambda: nn.Flatten(0, 0)}[net]
    module = TemporalShift(make(), T, 4, inplace=True)
    x = _frames()
    before = x.clone()
    with torch.no_grad():
        out = module(x)
    expected = make()(_oracle(mmaction_tsm, before.clone()))
    assert torch.equal(out, expected) and torch.equal(x, before)


# --------------------------------------------------------------------------- hooks
HOOKS = ['forward', 'forward_pre', 'backward', 'full_backward', 'full_backward_pre',
         'global_forward', 'global_full_backward', 'inner_forward']


def _register(kind: str, module: nn.Module, calls: list):
    def hook(*args):
        calls.append(kind)

    reg = nn.modules.module
    return {
        'forward': lambda: module.register_forward_hook(hook),
        'forward_pre': lambda: module.register_forward_pre_hook(hook),
        'backward': lambda: module.register_backward_hook(hook),
        'full_backward': lambda: module.register_full_backward_hook(hook),
        'full_backward_pre': lambda: module.register_full_backward_pre_hook(hook),
        'global_forward': lambda: reg.register_module_forward_hook(hook),
        'global_full_backward': lambda: reg.register_module_full_backward_hook(hook),
        'inner_forward': lambda: module[0].register_forward_hook(hook),
    }[kind]()


@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('kind', HOOKS)
def test_every_hook_is_called(mmaction_tsm, backend, kind, train):
    conv = nn.Conv2d(8, 6, 1).double()
    net = nn.Sequential(conv) if kind == 'inner_forward' else conv
    module = TemporalShift(net, T, 4, inplace=True).train(train)
    calls = []
    x = _frames().requires_grad_(train)
    before = x.detach().clone()
    handle = _register(kind, net, calls)
    try:
        with torch.set_grad_enabled(train):
            out = module(x)
            if train:
                out.sum().backward()
    finally:
        handle.remove()
    if 'backward' not in kind or train:
        assert kind in calls
    torch.testing.assert_close(out, net(_oracle(mmaction_tsm, before)))
    assert torch.equal(x.detach(), before)


# --------------------------------------------------------------------------- overrides
class _OwnForward(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


class _Doubled(nn.Module):
    def forward(self, w):
        return w * 2


def _variants():
    def conv():
        return nn.Conv2d(8, 6, 1).double()

    def instance_forward():
        c = conv()
        c.forward = lambda v: nn.Conv2d.forward(c, v) + 1
        return c

    def parametrized():
        return nn.utils.parametrize.register_parametrization(conv(), 'weight', _Doubled())

    def pruned():
        return nn.utils.prune.random_unstructured(conv(), 'weight', amount=0.5)

    def subclass_weight():
        c = conv()
        c.weight = nn.Parameter(_Tagged(c.weight.detach()))
        return c

    return {'own-forward': lambda: _OwnForward(8, 6, 1).double(),
            'instance-forward': instance_forward, 'parametrized': parametrized,
            'weight-norm': lambda: nn.utils.weight_norm(conv()),
            'spectral-norm': lambda: nn.utils.spectral_norm(conv()),
            'pruned': pruned, 'subclass-weight': subclass_weight}


class _Tagged(torch.Tensor):
    """A tensor subclass (as quantization and sharding libraries use)."""


@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('variant', list(_variants()))
def test_overrides_and_computed_weights_are_honoured(mmaction_tsm, backend, variant, train):
    torch.manual_seed(0)
    net = _variants()[variant]()
    module = TemporalShift(net, T, 4, inplace=True)
    x = _frames().requires_grad_(train)
    with torch.set_grad_enabled(train):
        plan = choose(x, spec_for(x, T, 4, 'bidirectional'), in_place=True, net=net)
        # in inference a plain conv class may run in place on its own forward (a tensor
        # subclass as weight); nothing is ever fused
        assert plan.strategy == 'copy' or (not train and variant == 'subclass-weight'), plan
        out = module(x)
    if variant == 'spectral-norm':
        net.eval()  # the power iteration ran once more in the module's forward
    with torch.set_grad_enabled(train):
        torch.testing.assert_close(out, net(_oracle(mmaction_tsm, x.detach())))


# --------------------------------------------------------------------------- registered ops
LAYOUTS = [(False, False), (False, True), (True, False), (True, True)]


@pytest.mark.parametrize('x_last,w_last', LAYOUTS)
def test_fake_kernels_state_the_real_layouts(x_last, w_last):
    """``tsmnet::shift_conv2d`` and its backward: shape, strides and dtype of the fake
    result equal the real one's, for every layout of input and weight."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    fmt = torch.channels_last
    x = _frames(c=16, dtype=torch.float32, channels_last=x_last)
    w = torch.randn(8, 16, 3, 3)
    w = w.contiguous(memory_format=fmt) if w_last else w
    args = ([1, 1], [1, 1], [1, 1], 1, T, 2, [1, -1])
    out = torch.ops.tsmnet.shift_conv2d(x, w, None, *args)
    grads = torch.ops.tsmnet.shift_conv2d_backward(torch.randn_like(out), x, w, *args)
    with FakeTensorMode() as mode:
        fx, fw = mode.from_tensor(x), mode.from_tensor(w)
        fake_out = torch.ops.tsmnet.shift_conv2d(fx, fw, None, *args)
        fake_grads = torch.ops.tsmnet.shift_conv2d_backward(
            mode.from_tensor(out), fx, fw, *args)
    for real, fake in zip((out, *grads), (fake_out, *fake_grads)):
        assert (real.shape, real.stride(), real.dtype) == (fake.shape, fake.stride(),
                                                           fake.dtype)


def _op_cases():
    x = torch.randn(2 * T, 16, 3, 3)
    w = torch.randn(8, 16, 3, 3)
    conv = ([1, 1], [1, 1], [1, 1], 1, T, 2, [1, -1])
    cases = {
        'shift_conv2d': (x, w, torch.randn(8), *conv),
        'shift_conv2d_backward': (torch.randn(2 * T, 8, 3, 3), x, w, *conv),
        'torch_shift': (x, T, 2, [1, -1]),
    }
    if not backend_status()['native']:
        cases.update({'native_shift': (x, T, 2, [1, -1]), 'shift_copy': (x, T, 2, [-1]),
                      'shift_': (x.clone(), T, 2, [1, -1], True),
                      'unshift_': (x.clone(), T, 2, [1, -1],
                                   torch.randn(2 * 2 * 2 * 9))})
    if not backend_status()['triton']:
        cases.update({'triton_shift': (x, T, 2, [1, -1]),
                      'triton_shift_': (x.clone(), T, 2, [1, -1], True),
                      'triton_unshift_': (x.clone(), T, 2, [1, -1], torch.randn(2 * 2 * 2 * 9))})
    return cases


@pytest.mark.parametrize('layout', ['contiguous', 'channels_last'])
@pytest.mark.parametrize('name', ['shift_conv2d', 'shift_conv2d_backward', 'torch_shift',
                                  'native_shift', 'shift_copy', 'shift_', 'unshift_',
                                  'triton_shift', 'triton_shift_', 'triton_unshift_'])
def test_opcheck_over_every_registered_op(name, layout):
    cases = _op_cases()
    if name not in cases:
        pytest.skip(f'{name}: its backend is unavailable here')
    args = tuple(a.contiguous(memory_format=torch.channels_last)
                 if layout == 'channels_last' and isinstance(a, torch.Tensor) and a.dim() == 4
                 else a for a in cases[name])
    torch.library.opcheck(getattr(torch.ops.tsmnet, name).default, args)


# --------------------------------------------------------------------------- autocast
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_fused_follows_autocasts_rules(dtype):
    """Under autocast the fused path casts as autocast casts a conv: float32 to bfloat16,
    float64 left alone; the result equals the unfused pair."""
    conv = nn.Conv2d(8, 6, 1).to(dtype)
    x = _frames(dtype=dtype).requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        fused = TemporalShift(conv, T, 4)(x)
        plain = conv(temporal_shift(x, T, 4))
    assert type(fused.grad_fn).__name__ == 'ShiftConv2dFunctionBackward'
    assert fused.dtype == plain.dtype == (torch.bfloat16 if dtype == torch.float32 else dtype)
    torch.testing.assert_close(fused, plain)


# --------------------------------------------------------------------------- modes
def test_every_constructor_refuses_an_unknown_mode():
    x = _frames()
    for make in (lambda: ShiftSpec.of(T, 2, 'casual'),
                 lambda: temporal_shift(x, T, 4, 'casual'),
                 lambda: TemporalShift(nn.Identity(), T, 4, shift_mode='casual'),
                 lambda: ResNetTSM(18, num_segments=T, shift_mode='casual'),
                 lambda: MobileNetV2TSM(num_segments=T, shift_mode='casual'),
                 lambda: ShiftSpec(T, 2, (2,))):
        with pytest.raises(ValueError, match='casual|direction'):
            make()


# --------------------------------------------------------------------------- FX
@pytest.mark.slow
@pytest.mark.parametrize('train', [False, True])
@pytest.mark.parametrize('kind', ['resnet', 'mobilenet'])
def test_fx_symbolic_trace_of_the_backbones_equals_eager(kind, train):
    """``torch.fx.symbolic_trace`` (what feature extraction and FX quantization use) records
    each shift as one call of :func:`tsmnet.temporal_shift`; the traced module gives eager's
    outputs and gradients (MMAction2's own backbones cannot be traced: the reference fails)."""
    torch.manual_seed(0)
    model = (ResNetTSM(18, num_segments=T, pretrained=None) if kind == 'resnet'
             else MobileNetV2TSM(num_segments=T, widen_factor=0.5)).train(train)
    traced = torch.fx.symbolic_trace(model)
    shifts = [n for n in traced.graph.nodes if n.target is temporal_shift]
    assert len(shifts) == (8 if kind == 'resnet' else 10)
    x = torch.randn(2 * T, 3, 32, 32)
    outs = []
    for m in (model, traced):
        a = x.clone().requires_grad_()
        with torch.set_grad_enabled(True):
            out = m(a)
            out.square().mean().backward()
        outs.append((out.detach(), a.grad))
    for got, want in zip(outs[1], outs[0]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
