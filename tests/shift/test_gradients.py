"""``torch.autograd.gradcheck`` in float64: the op's hand-written backward, and small ResNetTSM
blocks built around it, have the gradients that finite differences give."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

from tsmnet import NL3DWrapper, ResNetTSM, TemporalPool, temporal_shift
from tsmnet.models.resnet import BasicBlock

MODES = ['bidirectional', 'causal']


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(True)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('num_segments,shift_div', [(3, 4), (1, 2), (4, 8)])
def test_op_gradcheck(mode: str, num_segments: int, shift_div: int) -> None:
    x = _x(2 * num_segments, 8, 2, 3)
    assert gradcheck(lambda v: temporal_shift(v, num_segments, shift_div, mode), (x,))
    assert gradgradcheck(lambda v: temporal_shift(v, num_segments, shift_div, mode), (x,))


@pytest.mark.parametrize('mode', MODES)
def test_op_gradcheck_channels_last(mode: str) -> None:
    x = _x(2 * 3, 8, 2, 3).detach().contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    assert gradcheck(lambda v: temporal_shift(v, 3, 4, mode), (x,))


def _block_case(shift_place: str, mode: str) -> tuple[nn.Module, str]:
    """The first block of a float64 ResNet-18-TSM stage 1 and the name of its shifted conv."""
    model = ResNetTSM(18, num_segments=3, num_stages=1, out_indices=(0,), strides=(1,),
                      dilations=(1,), shift_place=shift_place, shift_mode=mode, shift_div=8,
                      pretrained=None).double()
    block = model.layer1[0]
    conv = 'net.conv1.conv.weight' if shift_place == 'block' else 'conv1.conv.net.weight'
    return block, conv


@pytest.mark.slow
@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('shift_place', ['blockres', 'block'])
def test_resnet_tsm_block_gradcheck(shift_place: str, mode: str, train: bool) -> None:
    """Gradient with respect to the frames and to the weight of the conv after the shift."""
    block, conv_name = _block_case(shift_place, mode)
    block.train(train)
    params = dict(block.named_parameters())
    assert conv_name in params
    weight = params[conv_name].detach().clone().requires_grad_(True)

    def run(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return functional_call(block, {**params, conv_name: w}, (x,))

    x = _x(2 * 3, 64, 3, 3)
    assert gradcheck(run, (x, weight), fast_mode=True)


@pytest.mark.slow
@pytest.mark.parametrize('num_segments', [4, 3], ids=['even_T', 'odd_T'])
def test_temporal_pool_gradcheck(num_segments: int) -> None:
    pool = TemporalPool(nn.Identity(), num_segments)
    x = _x(2 * num_segments, 3, 2, 2)
    assert gradcheck(pool, (x,))


def test_non_local_wrapper_gradcheck() -> None:
    cfg: dict[str, Any] = dict(mode='embedded_gaussian', sub_sample=True, use_scale=False)
    wrapper = NL3DWrapper(BasicBlock(16, 16), num_segments=3, non_local_cfg=cfg).double().eval()
    x = _x(2 * 3, 16, 4, 4)
    assert gradcheck(wrapper, (x,), fast_mode=True)
