"""``torch.compile(model, dynamic=True)`` of a TSM backbone and a Recognizer: it compiles (the
shift dispatcher branches on no symbolic size) and equals eager, also for another batch size
without recompiling."""

from __future__ import annotations

import pytest
import torch

import tsmnet
from tsmnet import MobileNetV2TSM

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
T = 2
# fp32, inductor's own conv and pointwise kernels: measured 1e-6 of max |eager| (ResNet-18)
RELATIVE = 1e-4

MODELS = {
    'recognizer-r18': lambda: tsmnet.create_model(R50, depth=18, num_segments=T),
    'mobilenetv2-tsm': lambda: MobileNetV2TSM(num_segments=T, widen_factor=0.5),
}


def _relative(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float((got - ref).abs().max() / ref.abs().max())


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(MODELS))
def test_compile_dynamic_equals_eager(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    compiled = torch.compile(model, dynamic=True)
    recognizer = name.startswith('recognizer')
    for n in (2, 3):  # the second batch size runs the same dynamic graph
        x = torch.randn(n, T, 3, 32, 32)
        x = x if recognizer else x.flatten(0, 1)
        with torch.no_grad():
            assert _relative(compiled(x), model(x)) < RELATIVE, n
