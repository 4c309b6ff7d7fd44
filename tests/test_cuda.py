"""On a CUDA device: the same numbers as on the CPU, and streaming stays exact.

Marked ``gpu``: skipped where torch sees no CUDA device (see conftest.py)."""

from __future__ import annotations

import pytest
import torch

from tsmnet import ResNetTSM, TSMStream

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _no_tf32():
    """TF32 matmuls/convs would differ from the CPU by about 1e-3; compare true fp32."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize('shift_place', ['blockres', 'block'])
@pytest.mark.parametrize('channels_last', [False, True])
def test_train_step_on_cuda_matches_cpu(shift_place, channels_last):
    # float64: in float32 a train-mode ResNet-50 on cuDNN and on the CPU differ by ~1e-3 for
    # reasons that have nothing to do with the shift (other conv algorithms, other sums)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    cpu = ResNetTSM(50, num_segments=4, shift_place=shift_place).double()
    cpu.init_weights()
    gpu = ResNetTSM(50, num_segments=4, shift_place=shift_place).double()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda().to(memory_format=fmt)
    x = torch.randn(8, 3, 64, 64, dtype=torch.float64)
    out_cpu = cpu(x)
    out_gpu = gpu(x.cuda().to(memory_format=fmt))
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-7, atol=1e-7)
    grad = torch.randn_like(out_cpu)
    out_cpu.backward(grad)
    out_gpu.backward(grad.cuda())
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters()):
        scale = p_cpu.grad.abs().max().item() + 1.0
        diff = (p_gpu.grad.cpu() - p_cpu.grad).abs().max().item()
        assert diff <= 1e-7 * scale, f'{name}: {diff}'


def test_stream_on_cuda_equals_offline():
    model = ResNetTSM(18, num_segments=6, shift_mode='causal').cuda().eval()
    clip = torch.randn(2, 6, 3, 64, 64, device='cuda')  # two streams of six frames
    with torch.no_grad():
        offline = model(clip.flatten(0, 1)).unflatten(0, (2, 6))
        stream = TSMStream(model)
        for t in range(6):
            torch.testing.assert_close(stream.step(clip[:, t]), offline[:, t], rtol=1e-4,
                                       atol=1e-4)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_training_on_cuda(dtype):
    model = ResNetTSM(50, num_segments=8).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 112, 112, device='cuda').to(memory_format=torch.channels_last)
    with torch.autocast('cuda', dtype=dtype):
        out = model(x)
    assert out.dtype == dtype and out.isfinite().all()
    out.float().square().mean().backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())
