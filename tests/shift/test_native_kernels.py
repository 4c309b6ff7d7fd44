"""The native shift kernels: built here, the exact numbers of the PyTorch ops, the input of the
in-place shift restored bit for bit, bad arguments refused, and the fallback when they are
off or cannot be built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsmnet import temporal_shift
from tsmnet.shift import (
    ShiftSpec,
    native,
    shift_owned,
    shifted_in_place,
    temporal_shift_reference,
    use_backend,
)

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.uint8)


@pytest.fixture
def kernels():
    built = native.kernels()
    if built is None:
        pytest.skip(f'native kernels unavailable here: {native.why_not()}')
    return built


@pytest.fixture
def torch_ops_only(monkeypatch):
    """The shift as it runs where the native kernels cannot be built."""
    monkeypatch.setattr(native, '_kernels', None)
    monkeypatch.setattr(native, '_why_not', 'off for this test')


def test_kernels_build_where_a_compiler_is():
    if os.environ.get(native.ENV_SWITCH) == '0':
        pytest.skip(f'{native.ENV_SWITCH}=0 in the environment')
    if not (shutil.which('c++') or shutil.which('g++')):
        pytest.skip('no C++ compiler: the PyTorch ops are what runs here')
    assert native.kernels() is not None, native.why_not()
    assert native.why_not() == ''


def _frames(clips: int, t: int, c: int, h: int, w: int, dtype: torch.dtype, seed: int,
            channels_last: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(clips * t, c, h, w, generator=gen) * 50).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


FRAMES = dict(clips=st.integers(0, 3), t=st.integers(1, 6), c=st.integers(2, 24),
              h=st.integers(1, 5), w=st.integers(1, 5), dtype=st.sampled_from(DTYPES),
              seed=st.integers(0, 2**16), channels_last=st.booleans())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(('bidirectional', 'causal')), div=st.integers(2, 8), **FRAMES)
def test_kernels_give_the_numbers_of_the_plain_loop(kernels, mode, div, clips, t, c, h, w,
                                                    dtype, seed, channels_last):
    x = _frames(clips, t, c, h, w, dtype, seed, channels_last)
    fold = c // div
    if fold == 0:
        return
    spec = ShiftSpec.of(t, fold, mode)
    expected = temporal_shift_reference(x, t, div, mode)
    if x.numel():  # the kernels are not called for empty frames
        assert torch.equal(kernels.shift_copy(x, t, fold, list(spec.dirs)), expected)
    assert torch.equal(temporal_shift(x, t, div, mode), expected)
    before = x.clone()
    if x.numel():
        with torch.no_grad(), shifted_in_place(x, spec):
            assert torch.equal(x, expected)
        assert torch.equal(x, before)
    # as a gradient is shifted back: the opposite shift, in place for good
    assert torch.equal(shift_owned(x, spec.reversed()), _shift_back(before, t, fold, mode))


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('shape,div', [
    ((8, 48, 29, 29), 8),  # contiguous frames of several 64 KiB tasks, cut inside a group
    ((4, 40000, 2, 2), 2),  # channels-last rows (and groups) longer than a task
    ((6, 1024, 7, 7), 8),
])
def test_kernels_on_frames_larger_than_a_task(kernels, shape, div, channels_last):
    t = 2
    x = _frames(shape[0] // t, t, *shape[1:], torch.float32, 0, channels_last)
    spec = ShiftSpec.of(t, shape[1] // div)
    expected = temporal_shift_reference(x, t, div)
    out = kernels.shift_copy(x, t, spec.fold, list(spec.dirs))
    assert torch.equal(out, expected)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    before = x.clone()
    with torch.no_grad(), shifted_in_place(x, spec):
        assert torch.equal(x, expected)
    assert torch.equal(x, before)


def _shift_back(x: torch.Tensor, t: int, fold: int, mode: str) -> torch.Tensor:
    """The reversed shift by hand: fold 0 moves the other way, fold 1 too."""
    out = torch.zeros_like(x)
    x5, o5 = x.view(-1, t, *x.shape[1:]), out.view(-1, t, *x.shape[1:])
    o5[:, :, 2 * fold if mode == 'bidirectional' else fold:] = (
        x5[:, :, 2 * fold if mode == 'bidirectional' else fold:])
    if mode == 'causal':  # reversed: frame i takes frame i + 1
        o5[:, :-1, :fold] = x5[:, 1:, :fold]
    else:  # reversed: fold 0 takes the previous frame, fold 1 the next
        o5[:, 1:, :fold] = x5[:, :-1, :fold]
        o5[:, :-1, fold:2 * fold] = x5[:, 1:, fold:2 * fold]
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(('bidirectional', 'causal')), div=st.integers(2, 8), **FRAMES)
def test_the_fallback_gives_the_same_numbers(torch_ops_only, mode, div, clips, t, c, h, w,
                                             dtype, seed, channels_last):
    assert native.kernels() is None
    x = _frames(clips, t, c, h, w, dtype, seed, channels_last)
    fold = c // div
    if fold == 0:
        return
    expected = temporal_shift_reference(x, t, div, mode)
    assert torch.equal(temporal_shift(x, t, div, mode), expected)
    before = x.clone()
    with torch.no_grad(), shifted_in_place(x, ShiftSpec.of(t, fold, mode)):
        assert torch.equal(x, expected)
    assert torch.equal(x, before)


def test_gradients_and_double_backward_through_the_kernels(kernels):
    x = torch.randn(8, 16, 2, 2, dtype=torch.float64, requires_grad=True)
    with use_backend('native'):
        assert torch.autograd.gradcheck(lambda v: temporal_shift(v, 4, 4), (x,))
        assert torch.autograd.gradgradcheck(lambda v: temporal_shift(v, 4, 4), (x,))


def test_kernels_refuse_what_they_cannot_shift(kernels):
    x = torch.randn(8, 16, 2, 2)
    with pytest.raises(RuntimeError, match='contiguous or channels-last'):
        kernels.shift_copy(x[:, ::2], 4, 2, [1, -1])
    with pytest.raises(RuntimeError, match='multiple of num_segments=3'):
        kernels.shift_copy(x, 3, 2, [1, -1])
    with pytest.raises(RuntimeError, match='do not fit in 16 channels'):
        kernels.shift_copy(x, 4, 9, [1, -1])
    with pytest.raises(RuntimeError, match='direction must be -1, 0 or 1'):
        kernels.shift_(x, 4, 2, [2], True)
    edges = kernels.shift_(x, 4, 2, [1, -1], True)
    with pytest.raises(RuntimeError, match='edges do not come from'):
        kernels.unshift_(x, 4, 2, [1, -1], edges[1:])
    kernels.unshift_(x, 4, 2, [1, -1], edges)


@pytest.mark.slow  # a new process
def test_the_environment_switch_turns_them_off():
    code = ('import torch; from tsmnet import temporal_shift; from tsmnet.shift import native; '
            'x = torch.randn(4, 8, 2, 2); temporal_shift(x, 2); '
            'print(native.kernels() is None, native.why_not())')
    env = {**os.environ, native.ENV_SWITCH: '0'}
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f'True turned off by {native.ENV_SWITCH}=0'


def test_a_failed_build_falls_back_and_says_why(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError('no compiler here')

    monkeypatch.setattr(native, '_kernels', native._UNSET)
    monkeypatch.setattr(native, '_why_not', '')
    monkeypatch.setattr(cpp_extension, 'load', no_compiler)
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    logged = []
    monkeypatch.setattr(native, 'print_log', lambda msg, **kw: logged.append(msg))
    x = torch.randn(6, 8, 2, 2)
    assert torch.equal(temporal_shift(x, 3), temporal_shift_reference(x, 3))
    assert native.kernels() is None
    assert native.why_not() == 'RuntimeError: no compiler here'
    assert [m for m in logged if 'unavailable' in m] == [
        'tsmnet: native shift kernels unavailable (RuntimeError: no compiler here); using '
        'PyTorch ops (same numbers, slower)'], logged


@pytest.mark.slow  # a new process
def test_nothing_is_built_for_frames_the_kernels_do_not_take():
    code = ('import torch; from tsmnet import temporal_shift; from tsmnet.shift import native; '
            'temporal_shift(torch.randn(4, 16, 2, 4)[..., ::2], 2); '
            'print(native.loaded())')
    env = {k: v for k, v in os.environ.items() if k != native.ENV_SWITCH}
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == 'False'
