"""Property-based tests: the shift op equals a plain per-frame loop over its whole input space.

Hypothesis draws N, T, C, H, W, shift_div, mode, dtype (fp32, fp64, fp16, bf16) and memory
layout (contiguous, channels_last, strided view); the op must equal
:func:`tsmnet.shift.temporal_shift_reference` exactly (a shift only moves values), in eager
inference, under autograd (forward and backward) and under tracing.
Examples in CI: 500 + 200 + 100 + 50 + 50 + 100 = 1000.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from tsmnet import TemporalShift, temporal_shift
from tsmnet.shift import temporal_shift_reference
from tsmnet.shift.functional import flat_frames

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
LAYOUTS = ('contiguous', 'channels_last', 'strided')
COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    n: int
    t: int
    c: int
    h: int
    w: int
    shift_div: int
    mode: str
    dtype: torch.dtype
    layout: str
    seed: int

    def tensor(self) -> torch.Tensor:
        """Frames ``[N * T, C, H, W]`` of the case's dtype and layout, distinct values."""
        gen = torch.Generator().manual_seed(self.seed)
        shape = (self.n * self.t, self.c, self.h, self.w)
        if self.layout == 'strided':  # a non-contiguous view: every other column of a wider one
            wide = torch.randn(*shape[:3], 2 * self.w, generator=gen).to(self.dtype)
            x = wide[..., ::2]
        else:
            x = torch.randn(*shape, generator=gen).to(self.dtype)
            if self.layout == 'channels_last':
                x = x.contiguous(memory_format=torch.channels_last)
        return x


@st.composite
def cases(draw: st.DrawFn, dtypes: tuple[torch.dtype, ...] = DTYPES) -> Case:
    mode = draw(st.sampled_from(('bidirectional', 'causal')))
    c = draw(st.integers(1, 40))
    least = 2 if mode == 'bidirectional' else 1
    shift_div = draw(st.integers(least, max(least, c)))
    return Case(n=draw(st.integers(1, 3)), t=draw(st.integers(1, 6)), c=c,
                h=draw(st.integers(1, 4)), w=draw(st.integers(1, 4)), shift_div=shift_div,
                mode=mode, dtype=draw(st.sampled_from(dtypes)),
                layout=draw(st.sampled_from(LAYOUTS)), seed=draw(st.integers(0, 2**31 - 1)))


def _valid(case: Case) -> bool:
    return case.c // case.shift_div >= 1


@settings(max_examples=500, **COMMON)
@given(case=cases())
def test_shift_equals_loop_reference(case: Case) -> None:
    x = case.tensor()
    if not _valid(case):
        with pytest.raises(ValueError, match='shift_div'):
            temporal_shift(x, case.t, case.shift_div, case.mode)
        return
    before = x.clone()
    out = temporal_shift(x, case.t, case.shift_div, case.mode)
    expected = temporal_shift_reference(x, case.t, case.shift_div, case.mode)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, expected)
    assert torch.equal(x, before), 'the op must not write to its input'
    if case.layout == 'channels_last':
        assert out.is_contiguous(memory_format=torch.channels_last)
    # conservation: every value of the output comes from the input or is a zero
    fold = case.c // case.shift_div
    moved = fold if case.mode == 'causal' else 2 * fold
    assert torch.equal(out[:, moved:], x[:, moved:])


@settings(max_examples=200, **COMMON)
@given(case=cases(dtypes=(torch.float32, torch.float64)))
def test_shift_gradient_equals_loop_reference(case: Case) -> None:
    assume(_valid(case))
    x = case.tensor().detach().requires_grad_(True)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(case.seed + 1),
                       dtype=x.dtype)
    out = temporal_shift(x, case.t, case.shift_div, case.mode)
    (got,) = torch.autograd.grad(out, x, grad)
    x_ref = x.detach().clone().requires_grad_(True)
    ref_out = temporal_shift_reference(x_ref, case.t, case.shift_div, case.mode)
    (expected,) = torch.autograd.grad(ref_out, x_ref, grad)
    assert torch.equal(out.detach(), ref_out.detach())
    assert torch.equal(got, expected)


@settings(max_examples=100, **COMMON)
@given(case=cases(), clips=st.integers(1, 3))
def test_traced_shift_equals_loop_reference_for_other_batches(case: Case, clips: int) -> None:
    """The traced (pad/cat) path: traced with one batch, run with another."""
    assume(_valid(case))
    x = case.tensor()
    traced = torch.jit.trace(
        lambda v: temporal_shift(v, case.t, case.shift_div, case.mode), x, check_trace=False)
    other = Case(**{**case.__dict__, 'n': clips, 'seed': case.seed + 1}).tensor()
    assert torch.equal(traced(other),
                       temporal_shift_reference(other, case.t, case.shift_div, case.mode))


@settings(max_examples=50, **COMMON)
@given(case=cases(), clips=st.integers(1, 3), zeros=st.sampled_from(('select', 'multiply')))
def test_traced_shift_with_flat_frames_equals_loop_reference(case: Case, clips: int,
                                                             zeros: str) -> None:
    """The forms tsmnet's ONNX and OpenVINO writers record (no view to ``[N, T, ...]``),
    likewise: traced with one batch, run with another."""
    assume(_valid(case))
    x = case.tensor()
    with flat_frames(zeros):  # type: ignore[arg-type]
        traced = torch.jit.trace(
            lambda v: temporal_shift(v, case.t, case.shift_div, case.mode), x, check_trace=False)
    nodes = list(traced.graph.nodes())
    assert ('aten::mul' if zeros == 'multiply' else 'aten::where') in {n.kind() for n in nodes}
    assert not [n for n in nodes if n.kind() in ('aten::reshape', 'aten::view')
                and n.output().type().dim() == 5]  # the frames never viewed as [N, T, ...]
    other = Case(**{**case.__dict__, 'n': clips, 'seed': case.seed + 1}).tensor()
    assert torch.equal(traced(other),
                       temporal_shift_reference(other, case.t, case.shift_div, case.mode))


def test_flat_frames_names_a_bad_form() -> None:
    with pytest.raises(ValueError, match="zeros must be 'select' or 'multiply', got 'pad'"):
        with flat_frames('pad'):  # type: ignore[arg-type]
            pass


@settings(max_examples=50, **COMMON)
@given(case=cases(dtypes=(torch.float32,)), extra=st.integers(1, 5))
def test_batch_not_multiple_of_num_segments_is_refused(case: Case, extra: int) -> None:
    assume(case.t > 1 and _valid(case))
    x = torch.zeros(case.n * case.t + 1 + extra % (case.t - 1), case.c, case.h, case.w)
    with pytest.raises(ValueError, match=rf'\({x.shape[0]} frames\).*\({case.t}\)'):
        temporal_shift(x, case.t, case.shift_div, case.mode)


@pytest.mark.slow
@settings(max_examples=100, **COMMON)
@given(case=cases(dtypes=(torch.float64,)), out_channels=st.integers(1, 6),
       kernel=st.sampled_from((1, 3)), bias=st.booleans())
def test_shift_then_conv_module_equals_reference(case: Case, out_channels: int, kernel: int,
                                                 bias: bool) -> None:
    """``TemporalShift`` around a conv (the blockres site, which may run shift and conv fused
    in training): output and every gradient equal the loop reference followed by the conv."""
    assume(_valid(case))
    gen = torch.Generator().manual_seed(case.seed + 2)
    conv = nn.Conv2d(case.c, out_channels, kernel, padding=kernel // 2, bias=bias).double()
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    module = TemporalShift(conv, case.t, case.shift_div, case.mode)
    x = case.tensor().detach().requires_grad_(True)
    out = module(x)
    grad = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    got = torch.autograd.grad(out, (x, *conv.parameters()), grad)
    x_ref = x.detach().clone().requires_grad_(True)
    ref_out = conv(temporal_shift_reference(x_ref, case.t, case.shift_div, case.mode))
    expected = torch.autograd.grad(ref_out, (x_ref, *conv.parameters()), grad)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
