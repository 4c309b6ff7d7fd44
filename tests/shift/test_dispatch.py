"""The dispatcher: one choice per call, visible (explain, backend_status), forced by the
environment or use_backend (per thread), and a forced backend never falls back silently.
Every backend gives the numbers of the plain loop; every registered op passes opcheck."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import torch
from torch import nn

from tsmnet import TemporalShift, temporal_shift
from tsmnet.shift import (
    AUTO_ORDER,
    ENV_BACKEND,
    ShiftSpec,
    backend_status,
    choose,
    explain,
    forced_backend,
    native,
    temporal_shift_reference,
    use_backend,
)

CPU_BACKENDS = ('functional', 'torch', 'native')


@pytest.mark.parametrize('backend', CPU_BACKENDS)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('mode', ['bidirectional', 'causal'])
def test_every_backend_gives_the_numbers_of_the_loop(backend, channels_last, mode):
    if backend == 'native' and native.kernels() is None:
        pytest.skip(f'native kernels unavailable here: {native.why_not()}')
    x = torch.randn(3 * 4, 19, 3, 5)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    expected = temporal_shift_reference(x, 4, 4, mode)
    grad = torch.randn_like(x)
    with use_backend(backend):
        assert choose(x, ShiftSpec.of(4, 4, mode)).backend == backend
        assert torch.equal(temporal_shift(x, 4, 4, mode), expected)
        leaf = x.clone().requires_grad_()
        temporal_shift(leaf, 4, 4, mode).backward(grad)
    ref = x.clone().requires_grad_()
    temporal_shift_reference(ref, 4, 4, mode).backward(grad)
    assert torch.equal(leaf.grad, ref.grad)


@pytest.mark.slow
def test_unknown_backend_names_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"name must be one of \('auto', 'functional', 'torch', "
                                         r"'native', 'triton'\), got 'cuda'"):
        with use_backend('cuda'):
            pass
    code = 'import torch, tsmnet; tsmnet.temporal_shift(torch.randn(4, 8, 2, 2), 2)'
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env={**os.environ, ENV_BACKEND: 'fast'})
    assert done.returncode != 0
    assert f"{ENV_BACKEND} must be one of ('auto', 'functional'" in done.stderr


@pytest.mark.slow
def test_the_environment_forces_a_backend():
    code = ('import torch, tsmnet; from tsmnet.shift import explain; '
            'print(explain(torch.randn(4, 8, 2, 2), 2))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, env={**os.environ, ENV_BACKEND: 'torch'}).stdout
    assert out.startswith('torch/copy: forced;'), out


def test_a_forced_backend_raises_instead_of_falling_back():
    with use_backend('native'):
        with pytest.raises(RuntimeError, match="'native' \\(forced\\) cannot take x: x is on "
                                               "meta, the kernels are for the CPU"):
            temporal_shift(torch.randn(4, 8, 2, 2, device='meta'), 2)
    with use_backend('torch'):
        with pytest.raises(RuntimeError, match="'torch' \\(forced\\) cannot be traced"):
            torch.jit.trace(lambda v: temporal_shift(v, 2), torch.randn(4, 8, 2, 2))


def test_use_backend_is_per_thread_and_nests():
    seen = {}
    ready, release = threading.Event(), threading.Event()

    def other() -> None:
        with use_backend('functional'):
            ready.set()
            release.wait(10)
            seen['other'] = forced_backend()

    thread = threading.Thread(target=other)
    thread.start()
    ready.wait(10)
    seen['main'] = forced_backend()
    with use_backend('torch'):
        with use_backend('functional'):
            seen['inner'] = forced_backend()
        seen['outer'] = forced_backend()
    release.set()
    thread.join(10)
    assert seen == {'other': 'functional', 'main': 'auto', 'inner': 'functional',
                    'outer': 'torch'}
    assert forced_backend() == 'auto'


def test_backend_status_says_why_not():
    status = backend_status()
    assert set(status) == set(AUTO_ORDER)
    assert status['functional'] == status['torch'] == ''
    assert status['native'] == native.why_not()
    if not torch.cuda.is_available() and os.environ.get('TRITON_INTERPRET') != '1':
        assert status['triton']


@pytest.mark.slow
def test_backend_status_is_honest_about_triton_on_a_cpu():
    code = 'import tsmnet; print(tsmnet.shift.backend_status()["triton"])'
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, env=env).stdout.strip()
    if torch.cuda.is_available():
        assert out == ''
    else:
        assert out.startswith(('triton is not installed', 'no CUDA device, and '
                                                           'TRITON_INTERPRET=1 was not set'))


def test_explain_names_the_strategy_and_why():
    x = torch.randn(8, 16, 3, 3)
    conv = nn.Conv2d(16, 4, 1)
    assert '/copy: the caller does not allow shifting its input in place' in explain(x, 4)
    assert 'fused' in explain(x, 4, net=conv)  # training a plain conv
    with torch.no_grad():
        assert '/in_place: no autograd, no hooks' in explain(x, 4, in_place=True, net=conv)
        handle = conv.register_forward_pre_hook(lambda m, args: None)
        assert '/copy: module hooks could keep' in explain(x, 4, in_place=True, net=conv)
        handle.remove()
    with use_backend('functional'), torch.no_grad():
        # functional has no in-place shift: a forced backend copies instead (not an error)
        assert explain(x, 4, in_place=True, net=conv).startswith('functional/copy: forced;')


def test_native_and_torch_ops_pass_opcheck():
    x = torch.randn(6, 8, 2, 3)
    ops = [torch.ops.tsmnet.torch_shift.default]
    if native.kernels() is not None:
        ops.append(torch.ops.tsmnet.native_shift.default)
        for xi in (x, x.contiguous(memory_format=torch.channels_last)):
            torch.library.opcheck(torch.ops.tsmnet.shift_copy.default, (xi, 3, 2, [1, -1]))
            torch.library.opcheck(torch.ops.tsmnet.shift_.default, (xi.clone(), 3, 2, [-1], True))
            edges = torch.ops.tsmnet.shift_(xi.clone(), 3, 2, [1, -1], True)
            torch.library.opcheck(torch.ops.tsmnet.unshift_.default,
                                  (xi.clone(), 3, 2, [1, -1], edges))
    for op in ops:
        for xi in (x, x.contiguous(memory_format=torch.channels_last)):
            torch.library.opcheck(op, (xi, 3, 2, [1, -1]))
            torch.library.opcheck(op, (xi.clone().requires_grad_(), 3, 2, [-1]))


def test_module_forward_is_the_shift_then_the_net():
    conv = nn.Conv2d(16, 4, 1)
    x = torch.randn(8, 16, 3, 3)
    with torch.no_grad():
        for backend in CPU_BACKENDS:
            with use_backend(backend):
                torch.testing.assert_close(TemporalShift(conv, 4, 4, inplace=True)(x),
                                           conv(temporal_shift_reference(x, 4, 4)))
