"""Helpers to compare a tsmnet module with MMAction2's own, weight for weight."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path

import torch
from torch import nn


def randomize(model: nn.Module, seed: int = 0) -> None:
    """Give every BN random statistics and affine parameters, and every all-zero parameter
    (e.g. NonLocal3d's zero-initialised output conv) random values, so parity is not trivial."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
                mean = module.running_mean
                mean.copy_(torch.randn(mean.shape, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
        for param in model.parameters():
            if not param.abs().sum():
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05)


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def assert_same_numbers(ref: nn.Module, ours: nn.Module, x: torch.Tensor, atol: float = 1e-5,
                        train: bool = True) -> None:
    """Same outputs (train and eval mode, float32) and same gradients, within ``atol``.

    Gradients are compared in float64: the reference builds its zero padding as ``x - x``,
    so its backward adds and subtracts the padding's gradient, which rounds in float32 (about
    1e-7 relative, i.e. 1e-3 absolute for the gradients of order 1e3 that a randomly
    initialised ResNet-50 produces). In float64 both agree far below ``atol``.
    """
    ours.load_state_dict(ref.state_dict(), strict=True)
    if train:
        ref.train()
        ours.train()
        with torch.no_grad():
            for a, b in zip(as_tuple(ref(x)), as_tuple(ours(x))):
                assert a.shape == b.shape
                assert max_abs_diff(a, b) <= atol, f'train output differs by {max_abs_diff(a, b)}'
        _assert_same_gradients(ref.double(), ours.double(), x.double(), atol)
        ref.float()
        ours.float()
        for (name, b_ref), b_ours in zip(ref.state_dict().items(), ours.state_dict().values()):
            assert max_abs_diff(b_ref.float(), b_ours.float()) <= atol, f'{name} after train step'
    ref.eval()
    ours.eval()
    with torch.no_grad():
        for a, b in zip(as_tuple(ref(x)), as_tuple(ours(x))):
            assert max_abs_diff(a, b) <= atol, f'eval output differs by {max_abs_diff(a, b)}'


def _assert_same_gradients(ref: nn.Module, ours: nn.Module, x: torch.Tensor, atol: float) -> None:
    x_ref = x.clone().requires_grad_()
    x_ours = x.clone().requires_grad_()
    out_ref, out_ours = as_tuple(ref(x_ref)), as_tuple(ours(x_ours))
    assert len(out_ref) == len(out_ours)
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(o.shape, generator=gen, dtype=o.dtype) for o in out_ref]
    for a, b in zip(out_ref, out_ours):
        assert max_abs_diff(a, b) <= atol, f'train output differs by {max_abs_diff(a, b)}'
    torch.autograd.backward(out_ref, grads)
    torch.autograd.backward(out_ours, grads)
    assert max_abs_diff(x_ref.grad, x_ours.grad) <= atol, 'input gradient differs'
    ours_params = dict(ours.named_parameters())
    for name, p_ref in ref.named_parameters():
        p_ours = ours_params[name]
        assert (p_ref.grad is None) == (p_ours.grad is None), name
        if p_ref.grad is not None:
            diff = max_abs_diff(p_ref.grad, p_ours.grad)
            assert diff <= atol, f'gradient of {name} differs by {diff}'


def shipped_resnet_tsm_backbones() -> dict[str, dict]:
    """The backbone arguments of every ResNetTSM config in the mmaction2 wheel, by config name."""
    spec = importlib.util.find_spec('mmaction')
    if spec is None or spec.origin is None:
        return {}
    from mmengine.config import Config

    root = Path(spec.origin).parent / '.mim' / 'configs'
    found = {}
    for path in sorted(glob.glob(str(root / '**' / '*.py'), recursive=True)):
        if '_base_' in path or 'ResNetTSM' not in _with_bases_text(Path(path)):
            continue
        backbone = Config.fromfile(path).get('model', {}).get('backbone', {})
        if backbone.get('type') == 'ResNetTSM':
            found[Path(path).stem] = {k: v for k, v in backbone.to_dict().items() if k != 'type'}
    return found


def _with_bases_text(path: Path) -> str:
    """The text of a config and of the base configs it names (cheap pre-filter)."""
    text = path.read_text()
    root = path.parent
    for line in text.splitlines():
        for part in line.split("'")[1::2]:
            if part.endswith('.py'):
                base = (root / part).resolve()
                if base.is_file():
                    text += _with_bases_text(base)
    return text
