"""Small models for the export tests: a causal ResNet-18-TSM at 32 x 32, 3 frames, with
non-trivial batch-norm statistics (so folding and quantization have something to get wrong)."""

from __future__ import annotations

import pytest
import torch
from parity import randomize
from torch import nn

from tsmnet import ResNetTSM

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

T = 3
SIZE = 32


def conditioned(model: nn.Module) -> nn.Module:
    """The model in eval mode with random batch-norm statistics and affine parameters
    (``randomize(model, seed=1)``)."""
    randomize(model, seed=1)
    return model.eval()


def causal_r18() -> ResNetTSM:
    torch.manual_seed(0)
    return conditioned(ResNetTSM(18, num_segments=T, shift_mode='causal', pretrained=None))


@pytest.fixture(scope='module')
def model() -> ResNetTSM:
    return causal_r18()


def clips(n: int, seed: int = 0) -> torch.Tensor:
    """Smooth random clips ``[n, T, 3, SIZE, SIZE]`` (well-conditioned inputs)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n * T, 3, SIZE // 4, SIZE // 4, generator=gen)
    x = nn.functional.interpolate(x, size=(SIZE, SIZE), mode='bilinear', align_corners=False)
    return x.unflatten(0, (n, T))
