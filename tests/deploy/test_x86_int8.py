"""``tsmnet.quantize(model, calibration, backend='x86')``: PT2E with torchao's
``X86InductorQuantizer``, compiled; every conv int8 (tsmnet's convs are plain ``nn.Conv2d``),
within the int8 bound of every export against eager fp32."""

from __future__ import annotations

import pytest
import torch
from conftest import causal_r18, clips

import tsmnet

pytest.importorskip('torchao')


@pytest.mark.slow
def test_x86_int8_quantizes_every_conv_and_agrees_with_fp32():
    model = causal_r18()
    result = tsmnet.quantize(model, [clips(2, seed=s) for s in range(4)], backend='x86')
    assert result.convs == 20 and result.quantized_convs == 20  # ResNet-18: every conv
    assert result.ok and result.comparison.cosine >= 0.95, result.comparison
    x = clips(3, seed=9)  # another N than the calibration's: N is dynamic
    with torch.no_grad():
        ref, got = model(x.flatten(0, 1)), result(x)
    cosine = torch.nn.functional.cosine_similarity(ref.flatten(), got.flatten(), dim=0)
    assert got.shape == ref.shape and cosine >= 0.95, cosine


def test_x86_quantize_names_a_bad_backend():
    with pytest.raises(ValueError, match="backend must be one of .'x86',., got 'arm'"):
        tsmnet.quantize(causal_r18(), clips(1), backend='arm')


def test_x86_quantize_names_bad_calibration():
    with pytest.raises(ValueError, match='calibration clip 0 must be'):
        tsmnet.quantize(causal_r18(), torch.zeros(1, 2, 3, 32, 32))
