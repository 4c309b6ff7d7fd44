"""Training on the CPU flushes denormals (tsmnet demo, tsmnet finetune), and only meanwhile."""

from __future__ import annotations

import torch

from tsmnet.demo.train import flush_denormals

TINY = 1e-39  # below float32's smallest normal (1.18e-38): a denormal


def _survives() -> bool:
    return bool((torch.tensor([TINY]) * 1.0).item() != 0)


def test_denormals_flushed_inside_only():
    assert _survives()
    with flush_denormals('cpu') as supported:
        if supported:  # x86 with SSE3 (every CI machine); elsewhere the call is a no-op
            assert not _survives()
    assert _survives()


def test_other_devices_untouched():
    with flush_denormals(torch.device('meta')) as supported:
        assert supported is False
        assert _survives()
