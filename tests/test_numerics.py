"""Numerics: exact-zero padding whatever the input holds, no invented NaN, determinism, and
reduced precision (fp16/bf16 autocast and half models)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsmnet import ResNetTSM, TemporalShift, temporal_shift
from tsmnet.shift import temporal_shift_reference

MODES = ['bidirectional', 'causal']
T = 4


def _padding_mask(shape: tuple[int, ...], fold: int, mode: str) -> torch.Tensor:
    """True where the shift writes a zero frame: outside the clip in time."""
    nt = shape[0]
    mask = torch.zeros(shape, dtype=torch.bool)
    first, last = torch.arange(0, nt, T), torch.arange(T - 1, nt, T)
    if mode == 'causal':
        mask[first, :fold] = True
    else:
        mask[last, :fold] = True
        mask[first, fold:2 * fold] = True
    return mask


def _hostile(shape: tuple[int, ...], seed: int, with_nan: bool) -> torch.Tensor:
    """Random frames with +inf, -inf (and NaN) scattered through them."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen)
    pick = torch.randint(0, 4 if with_nan else 3, shape, generator=gen)
    x[pick == 1] = float('inf')
    x[pick == 2] = float('-inf')
    if with_nan:
        x[pick == 3] = float('nan')
    return x


def _shift_paths(x: torch.Tensor, mode: str) -> dict[str, torch.Tensor]:
    """The op through each of its code paths: inference, autograd, traced, and the module."""
    out = {'no_grad': temporal_shift(x, T, 8, mode)}
    out['autograd'] = temporal_shift(x.clone().requires_grad_(True), T, 8, mode).detach()
    traced = torch.jit.trace(lambda v: temporal_shift(v, T, 8, mode), x, check_trace=False)
    out['traced'] = traced(x)
    out['module'] = TemporalShift(nn.Identity(), T, 8, mode)(x)
    return out


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize('mode', MODES)
def test_padding_is_exact_zeros_with_inf_and_nan_everywhere_else(
        mode: str, dtype: torch.dtype, device: torch.device) -> None:
    shape = (3 * T, 16, 3, 3)
    x = _hostile(shape, 0, with_nan=True).to(dtype)
    mask = _padding_mask(shape, 16 // 8, mode)
    for path, out in _shift_paths(x.to(device), mode).items():
        out = out.cpu()
        assert torch.equal(out[mask], torch.zeros_like(out[mask])), path
        assert not out[mask].signbit().any(), f'{path}: padding must be +0.0'
        expected = temporal_shift_reference(x, T, 8, mode)
        assert torch.equal(out.isnan(), expected.isnan()), path
        assert torch.equal(out.nan_to_num(), expected.nan_to_num()), path


@pytest.mark.parametrize('mode', MODES)
def test_no_nan_where_the_input_had_none(mode: str, device: torch.device) -> None:
    x = _hostile((2 * T, 16, 2, 2), 1, with_nan=False).to(device)
    assert not x.isnan().any()
    for path, out in _shift_paths(x, mode).items():
        assert not out.isnan().any(), f'{path}: NaN from an input without NaN'
        # and the infinities are where the reference puts them, with their sign
        assert torch.equal(out.cpu(), temporal_shift_reference(x.cpu(), T, 8, mode)), path


@pytest.mark.parametrize('mode', MODES)
def test_backward_of_hostile_gradient_keeps_padding_out(mode: str) -> None:
    """The gradient of the dropped frames is exactly zero, even when the incoming gradient
    holds inf/NaN there (it belongs to no input element)."""
    shape = (2 * T, 16, 2, 2)
    x = torch.randn(shape, requires_grad=True)
    grad_out = torch.randn(shape)
    out = temporal_shift(x, T, 8, mode)
    mask = _padding_mask(shape, 2, mode)
    grad_out[mask] = float('nan')  # gradient arriving at zero padding: must be discarded
    (grad,) = torch.autograd.grad(out, x, grad_out)
    assert not grad.isnan().any()


def _model(seed: int, **kwargs) -> ResNetTSM:
    torch.manual_seed(seed)
    return ResNetTSM(18, num_segments=T, pretrained=None, **kwargs)


def _train_step(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.train()
    model.zero_grad()
    out = model(x)
    out.square().mean().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.slow
@pytest.mark.parametrize('shift_place', ['blockres', 'block'])
def test_deterministic_for_a_fixed_seed(shift_place: str, device: torch.device) -> None:
    """Same seed, same weights, outputs and gradients, bit for bit, with PyTorch's
    deterministic algorithms enforced (an op without one would raise)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        a, b = (_model(7, shift_place=shift_place).to(device) for _ in range(2))
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka
        torch.manual_seed(3)
        x = torch.randn(2 * T, 3, 32, 32, device=device)
        out_a, grads_a = _train_step(a, x)
        out_b, grads_b = _train_step(b, x)
        assert torch.equal(out_a, out_b)
        assert all(torch.equal(ga, gb) for ga, gb in zip(grads_a, grads_b))
        with torch.no_grad():
            assert torch.equal(a.eval()(x), b.eval()(x))
            assert torch.equal(a(x), a(x))
        assert not _model(8, shift_place=shift_place).state_dict()['conv1.conv.weight'].equal(
            a.state_dict()['conv1.conv.weight'].cpu()), 'another seed must give other weights'
    finally:
        torch.use_deterministic_algorithms(previous)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.quick_only('blockres-bf16')
@pytest.mark.parametrize('config,dtype', [
    (dict(), torch.bfloat16),
    (dict(), torch.float16),
    (dict(shift_place='block', temporal_pool=True), torch.bfloat16),
    (dict(shift_mode='causal'), torch.bfloat16),
], ids=['blockres-bf16', 'blockres-fp16', 'block_pool-bf16', 'causal-bf16'])
def test_autocast_runs_forward_and_backward(config: dict, dtype: torch.dtype,
                                            device: torch.device) -> None:
    model = _model(0, **config).to(device).eval()
    x = torch.randn(2 * T, 3, 32, 32, device=device)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast(device.type, dtype=dtype):
            low = model(x)
    assert low.dtype == dtype and low.shape == reference.shape
    assert torch.isfinite(low).all()
    assert _rel_err(low, reference) < 0.05
    model.train()
    xg = x.clone().requires_grad_(True)
    with torch.autocast(device.type, dtype=dtype):
        out = model(xg)
    out.float().square().mean().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=['bf16', 'fp16'])
def test_half_precision_model(dtype: torch.dtype, device: torch.device) -> None:
    model = _model(0).eval().to(device)
    x = torch.randn(2 * T, 3, 32, 32, device=device)
    with torch.no_grad():
        reference = model(x)
        low = model.to(dtype)(x.to(dtype))
    assert low.dtype == dtype and torch.isfinite(low).all()
    assert _rel_err(low, reference) < 0.05
