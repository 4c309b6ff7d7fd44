"""Batch independence: in eval mode a clip's features never depend on the other clips.

The reference breaks this with ``temporal_pool=True`` and non-local blocks (they are built for
the unpooled number of frames and mix frames of different clips). Every configuration here runs
4 clips together, then each clip alone and with the other clips replaced by very different
frames; the clip's features must stay the same.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from mmcv.cnn import NonLocal3d

from tsmnet import NL3DWrapper, ResNetTSM

SIZE = 32
CLIPS = 4  # even, so that a wrong frame count mixes clips silently instead of failing
NON_LOCAL_MODES = ['embedded_gaussian', 'gaussian', 'dot_product', 'concatenation']
POOLS = {'no_pool': (False, 4), 'pool_even_T': (True, 4), 'pool_odd_T': (True, 3)}


def _non_local_flags(depth: int) -> tuple[tuple[int, ...], ...]:
    """Non-local after the first block of layer2 and the last block of layer3."""
    blocks = ResNetTSM.arch_settings[depth][1]
    flags = [[0] * b for b in blocks]
    flags[1][0] = 1
    flags[2][-1] = 1
    return tuple(tuple(f) for f in flags)


def _model(depth: int, num_segments: int, **kwargs: Any) -> ResNetTSM:
    model = ResNetTSM(depth, num_segments=num_segments, pretrained=None, **kwargs)
    gen = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, NonLocal3d):
            # NonLocal3d starts as an identity (zero-initialised output conv or BN), which
            # would hide any mixing: give every non-local parameter a real value
            for p in m.parameters():
                p.data.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def _assert_clips_independent(model: ResNetTSM, num_segments: int, alone: bool = True) -> None:
    """Clip 1's features are the same whatever the other clips hold, and (with ``alone``)
    each clip's features are those it has when run alone."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(CLIPS * num_segments, 3, SIZE, SIZE, generator=gen)
    others = x.clone()
    for clip in (0, 2, 3):
        rows = slice(clip * num_segments, (clip + 1) * num_segments)
        others[rows] = -10 * torch.randn(num_segments, 3, SIZE, SIZE, generator=gen)
    with torch.no_grad():
        together = model(x)
        swapped = model(others)
        single = [model(x[c * num_segments:(c + 1) * num_segments])
                  for c in range(CLIPS if alone else 0)]
    out_t = model.stage_segments[-1]
    assert together.shape[0] == CLIPS * out_t
    atol = 1e-5 * max(1.0, together.abs().max().item())
    for c, out in enumerate(single):
        torch.testing.assert_close(out, together[c * out_t:(c + 1) * out_t],
                                   rtol=1e-4, atol=atol, msg=f'clip {c} alone vs in a batch')
    torch.testing.assert_close(swapped[out_t:2 * out_t], together[out_t:2 * out_t],
                               rtol=1e-4, atol=atol,
                               msg='clip 1 changed when the other clips changed')


@pytest.mark.parametrize('pool', list(POOLS))
@pytest.mark.parametrize('shift_place,shift_mode', [('blockres', 'bidirectional'),
                                                    ('block', 'bidirectional'),
                                                    ('blockres', 'causal')])
@pytest.mark.quick_only('18-blockres-bidirectional-pool_odd_T')
@pytest.mark.parametrize('depth', [18, 50])
def test_shift_and_pool(depth: int, shift_place: str, shift_mode: str, pool: str) -> None:
    temporal_pool, t = POOLS[pool]
    model = _model(depth, t, shift_place=shift_place, shift_mode=shift_mode,
                   temporal_pool=temporal_pool)
    assert model.stage_segments[-1] == (math.ceil(t / 2) if temporal_pool else t)
    _assert_clips_independent(model, t)


@pytest.mark.parametrize('pool', list(POOLS))
@pytest.mark.parametrize('mode', NON_LOCAL_MODES)
@pytest.mark.quick_only('18-gaussian-pool_odd_T')
@pytest.mark.parametrize('depth', [18, 50])
def test_non_local(depth: int, mode: str, pool: str) -> None:
    temporal_pool, t = POOLS[pool]
    model = _model(depth, t, temporal_pool=temporal_pool, non_local=_non_local_flags(depth),
                   non_local_cfg=dict(mode=mode, sub_sample=True, use_scale=False,
                                      norm_cfg=dict(type='BN3d', requires_grad=True)))
    assert sum(isinstance(m, NonLocal3d) for m in model.modules()) == 2
    _assert_clips_independent(model, t)


def test_the_check_sees_mixing() -> None:
    """Control: in train mode BatchNorm pools statistics over the whole batch, so clips do
    depend on each other there; the check must notice that."""
    model = _model(18, 4).train()
    with pytest.raises(AssertionError, match='clip'):
        _assert_clips_independent(model, 4)


def test_the_check_sees_the_reference_non_local_defect() -> None:
    """Control: a non-local block after the temporal pool told the unpooled number of frames
    (MMAction2's defect) mixes pairs of clips; the check must notice that."""
    model = _model(18, 4, temporal_pool=True, non_local=_non_local_flags(18),
                   non_local_cfg=dict(mode='embedded_gaussian', sub_sample=True))
    wrappers = [m for m in model.modules() if isinstance(m, NL3DWrapper)]
    assert [w.num_segments for w in wrappers] == [2, 2]
    _assert_clips_independent(model, 4, alone=False)
    for w in wrappers:
        w.num_segments = 4
    with pytest.raises(AssertionError, match='clip'):
        _assert_clips_independent(model, 4, alone=False)
