"""A catalogue of bad inputs: each gets a clear exception that names the parameter and the
expected form, never an ``AssertionError``, an opaque error from deep inside, or a silently
wrong result.

Every case is one entry of ``CASES`` (id, call, exception type, regex over the message); the
README's "Errors" section lists them. ``test_catalogue_size`` keeps the count honest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tsmnet import NL3DWrapper, ResNetTSM, TemporalPool, TemporalShift, temporal_shift
from tsmnet.weights.checkpoint import CheckpointMismatchError

T = 4


@dataclass(frozen=True)
class Bad:
    id: str
    call: Callable[[Path], Any]  # takes the folder of prepared checkpoint files
    exc: type[Exception]
    match: str


def _tsm(**kwargs: Any) -> ResNetTSM:
    return ResNetTSM(**{'depth': 18, 'num_segments': T, 'pretrained': None, **kwargs})


@cache
def _model() -> ResNetTSM:
    return _tsm().eval()


def _frames(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype)


def _build(cfg: dict[str, Any]) -> nn.Module:
    from tsmnet.registry import MODELS

    return MODELS.build(cfg)


def _load(path: Path, **kwargs: Any) -> None:
    _tsm(pretrained=str(path), **kwargs).init_weights()


NL_CFG = dict(mode='embedded_gaussian', sub_sample=True)

CONSTRUCTION = [
    Bad('depth-unknown', lambda d: _tsm(depth=7), ValueError,
        r"depth must be one of \[18, 34, 50, 101, 152\], got 7"),
    Bad('depth-str', lambda d: _tsm(depth='50'), ValueError, r"depth must be one of .* got '50'"),
    Bad('shift_place-superstring', lambda d: _tsm(shift_place='blockres2'), ValueError,
        r"shift_place must be one of \('block', 'blockres'\), got 'blockres2'"),
    Bad('shift_place-substring', lambda d: _tsm(shift_place='res'), ValueError,
        r"shift_place must be one of \('block', 'blockres'\), got 'res'"),
    Bad('shift_div-zero', lambda d: _tsm(shift_div=0), ValueError,
        r"shift_div must be >= 2 for shift_mode='bidirectional'.* got 0"),
    Bad('shift_div-one-bidirectional', lambda d: _tsm(shift_div=1), ValueError,
        r'shift_div must be >= 2 .*two folds.* got 1'),
    Bad('shift_div-float', lambda d: _tsm(shift_div=8.0), TypeError,
        r'shift_div must be an int, got float'),
    Bad('shift_div-too-large', lambda d: _tsm(shift_div=1000), ValueError,
        r'shift_div=1000 leaves no channel to shift.*64 channels.*shift_div must be <= 64'),
    Bad('shift_mode-unknown', lambda d: _tsm(shift_mode='forward'), ValueError,
        r"shift_mode must be one of \('bidirectional', 'causal'\), got 'forward'"),
    Bad('num_segments-zero', lambda d: _tsm(num_segments=0), ValueError,
        r'num_segments must be >= 1, got 0'),
    Bad('num_segments-float', lambda d: _tsm(num_segments=8.0), TypeError,
        r'num_segments must be an int, got float'),
    Bad('non_local-too-few-stages', lambda d: _tsm(non_local=(0, 0, 0)), ValueError,
        r'non_local must have one entry per stage \(4\), got 3'),
    Bad('non_local-wrong-block-count',
        lambda d: _tsm(non_local=((1, 0, 0), 0, 0, 0), non_local_cfg=NL_CFG), ValueError,
        r'non_local\[0\] must have one flag per block of stage 1 \(2 blocks for depth 18\), '
        r'got 3'),
    Bad('non_local-str', lambda d: _tsm(non_local='0100'), TypeError,
        r"non_local must be a sequence with one entry per stage, got '0100'"),
    Bad('non_local-without-cfg', lambda d: _tsm(non_local=(0, 1, 0, 0)), ValueError,
        r'non_local asks for non-local blocks but non_local_cfg is empty.*'
        r"non_local_cfg=dict\(mode="),
    Bad('non_local_cfg-not-dict', lambda d: _tsm(non_local=(0, 1, 0, 0), non_local_cfg=['mode']),
        TypeError, r"non_local_cfg must be a dict of NonLocal3d arguments or None, got \['mode'\]"),
    Bad('non_local_cfg-mode', lambda d: _tsm(non_local=(0, 1, 0, 0), non_local_cfg=dict(mode='x')),
        ValueError, r"Mode should be in 'gaussian', 'concatenation', 'embedded_gaussian' or "
        r"'dot_product', but got x"),
    Bad('temporal_pool-one-segment', lambda d: _tsm(num_segments=1, temporal_pool=True),
        ValueError, r'temporal_pool=True needs num_segments >= 2, got 1'),
    Bad('temporal_pool-one-stage',
        lambda d: _tsm(temporal_pool=True, num_stages=1, out_indices=(0,), strides=(1,),
                       dilations=(1,)),
        ValueError, r'temporal_pool=True pools before layer2 and needs num_stages >= 2'),
    Bad('out_indices-out-of-range', lambda d: _tsm(out_indices=(4,)), ValueError,
        r'out_indices must be stage indices in \[0, 3\] \(num_stages=4\), got \(4,\)'),
    Bad('out_indices-int', lambda d: _tsm(out_indices=3), TypeError,
        r'out_indices must be a sequence of ints, e.g. a tuple, got 3'),
    Bad('out_indices-empty', lambda d: _tsm(out_indices=()), ValueError,
        r'out_indices must be stage indices .* got \(\)'),
    Bad('strides-length', lambda d: _tsm(strides=(1, 2, 2)), ValueError,
        r'strides and dilations must have num_stages=4 entries, got strides=\(1, 2, 2\)'),
    Bad('strides-zero', lambda d: _tsm(strides=(1, 0, 2, 2)), ValueError,
        r'strides and dilations must be positive ints, got strides=\(1, 0, 2, 2\)'),
    Bad('strides-int', lambda d: _tsm(strides=2), TypeError,
        r'strides must be a sequence of ints, e.g. a tuple, got 2'),
    Bad('dilations-zero', lambda d: _tsm(dilations=(1, 1, 0, 1)), ValueError,
        r'strides and dilations must be positive ints, .*dilations=\(1, 1, 0, 1\)'),
    Bad('num_stages-five', lambda d: _tsm(num_stages=5), ValueError,
        r'num_stages must be an int from 1 to 4, got 5'),
    Bad('style-unknown', lambda d: _tsm(style='tf'), ValueError,
        r"style must be one of \('pytorch', 'caffe'\), got 'tf'"),
    Bad('frozen_stages-too-large', lambda d: _tsm(frozen_stages=5), ValueError,
        r'frozen_stages must be an int from -1 to num_stages=4, got 5'),
    Bad('in_channels-zero', lambda d: _tsm(in_channels=0), ValueError,
        r'in_channels must be a positive int, got 0'),
    Bad('pretrained-not-str', lambda d: _tsm(pretrained=3), TypeError,
        r'pretrained must be a str or None, got int'),
    Bad('TemporalShift-shift_div', lambda d: TemporalShift(nn.Identity(), 8, shift_div=0),
        ValueError, r'shift_div must be >= 2'),
    Bad('TemporalPool-one-segment', lambda d: TemporalPool(nn.Identity(), 1), ValueError,
        r'temporal pooling needs num_segments >= 2 frames per clip, got 1'),
    Bad('NL3DWrapper-block-without-conv', lambda d: NL3DWrapper(nn.Identity(), 8, NL_CFG),
        TypeError, r'cannot find the output channels of Identity: it holds no conv'),
]

FORWARD = [
    Bad('forward-rank-5', lambda d: _model()(_frames(2, T, 3, 32, 32)), ValueError,
        r'input must be 4-D \[N \* T, C, H, W\], got shape \(2, 4, 3, 32, 32\)'),
    Bad('forward-rank-3', lambda d: _model()(_frames(T, 3, 32)), ValueError,
        r'input must be 4-D \[N \* T, C, H, W\], got shape \(4, 3, 32\)'),
    Bad('forward-channels', lambda d: _model()(_frames(T, 1, 32, 32)), ValueError,
        r'input must have in_channels=3 channels, got 1'),
    Bad('forward-channels-last-axis', lambda d: _model()(_frames(T, 32, 32, 3)), ValueError,
        r'input must have in_channels=3 channels, got 32'),
    Bad('forward-batch-not-multiple', lambda d: _model()(_frames(6, 3, 32, 32)), ValueError,
        r'the batch of input \(6 frames\) must be a positive multiple of num_segments '
        r'\(4\)'),
    Bad('forward-empty-batch', lambda d: _model()(_frames(0, 3, 32, 32)), ValueError,
        r'the batch of input \(0 frames\) must be a positive multiple of num_segments'),
    Bad('forward-empty-frames', lambda d: _model()(_frames(T, 3, 0, 32)), ValueError,
        r'input frames must have H, W >= 1, got shape \(4, 3, 0, 32\)'),
    Bad('forward-uint8', lambda d: _model()(_frames(T, 3, 32, 32, dtype=torch.uint8)),
        TypeError, r'input must be a floating-point tensor, got torch.uint8'),
    Bad('forward-int64', lambda d: _model()(_frames(T, 3, 32, 32, dtype=torch.int64)),
        TypeError, r'input must be a floating-point tensor, got torch.int64'),
    Bad('forward-float64-into-float32-model',
        lambda d: _model()(_frames(T, 3, 32, 32, dtype=torch.float64)), TypeError,
        r"input dtype torch.float64 differs from the model parameters' torch.float32"),
    Bad('forward-numpy', lambda d: _model()(np.zeros((T, 3, 32, 32), np.float32)), TypeError,
        r'input must be a torch.Tensor, got ndarray'),
    Bad('forward-list', lambda d: _model()([_frames(T, 3, 32, 32)]), TypeError,
        r'input must be a torch.Tensor, got list'),
    Bad('TemporalPool-batch', lambda d: TemporalPool(nn.Identity(), T)(_frames(6, 3, 2, 2)),
        ValueError, r'the batch of input \(6 frames\) must be a multiple of num_segments \(4\)'),
    Bad('op-batch', lambda d: temporal_shift(_frames(6, 8, 2, 2), T), ValueError,
        r'the batch of x \(6 frames\) must be a multiple of num_segments \(4\)'),
    Bad('op-rank', lambda d: temporal_shift(_frames(1, T, 8, 2, 2), T), ValueError,
        r'x must be 4-D \[N \* T, C, H, W\], got shape \(1, 4, 8, 2, 2\)'),
    Bad('op-not-tensor', lambda d: temporal_shift(np.zeros((T, 8, 2, 2)), T), TypeError,
        r'x must be a torch.Tensor, got ndarray'),
    Bad('op-fold-zero', lambda d: temporal_shift(_frames(T, 4, 2, 2), T, shift_div=8),
        ValueError, r'shift_div=8 leaves no channel to shift in x with 4 channels'),
    Bad('op-mode', lambda d: temporal_shift(_frames(T, 8, 2, 2), T, mode='backward'),
        ValueError, r"mode must be one of \('bidirectional', 'causal'\), got 'backward'"),
]

REGISTRY = [
    Bad('registry-depth', lambda d: _build(dict(type='tsmnet.ResNetTSM', depth=7)), ValueError,
        r'depth must be one of \[18, 34, 50, 101, 152\], got 7'),
    Bad('registry-shift_place',
        lambda d: _build(dict(type='tsmnet.ResNetTSM', depth=18, shift_place='blockres2')),
        ValueError, r"shift_place must be one of \('block', 'blockres'\)"),
    Bad('registry-misspelt-argument',
        lambda d: _build(dict(type='tsmnet.ResNetTSM', depth=18, num_segment=8)), TypeError,
        r"unexpected keyword argument 'num_segment'"),
    Bad('registry-non_local-without-cfg',
        lambda d: _build(dict(type='tsmnet.ResNetTSM', depth=18, non_local=(0, 1, 1, 0))),
        ValueError, r'non_local_cfg is empty'),
    # MMEngine's own convention for an unknown type is a KeyError naming type and registry
    Bad('registry-unknown-type', lambda d: _build(dict(type='tsmnet.ResNetTSN', depth=18)),
        KeyError, r'tsmnet.ResNetTSN is not in the tsmnet::model registry'),
]

CHECKPOINT = [
    Bad('checkpoint-missing-file', lambda d: _load(d / 'missing.pth'), FileNotFoundError,
        r'checkpoint file not found: .*missing.pth'),
    Bad('checkpoint-directory', lambda d: _load(d), FileNotFoundError,
        r'checkpoint file not found'),
    Bad('checkpoint-truncated', lambda d: _load(d / 'truncated.pth', pretrained2d=False),
        ValueError, r'cannot read checkpoint .*truncated.pth: it is truncated, corrupt'),
    Bad('checkpoint-not-a-checkpoint', lambda d: _load(d / 'garbage.pth', pretrained2d=False),
        ValueError, r'checkpoint .*garbage.pth'),
    Bad('checkpoint-pickled-module', lambda d: _load(d / 'module.pth', pretrained2d=False),
        ValueError, r'refused to load checkpoint .*module.pth: it needs '
        r'torch.nn.modules.linear.Linear'),
    Bad('checkpoint-no-tensors', lambda d: _load(d / 'no_tensors.pth', pretrained2d=False),
        ValueError, r'checkpoint .*no_tensors.pth holds no state dict of tensors'),
    Bad('checkpoint-wrong-architecture', lambda d: _load(d / 'resnet50.pth', pretrained2d=False),
        CheckpointMismatchError, r'checkpoint .*resnet50.pth does not fit ResNetTSM: .*'
        r'unexpected keys: layer1.0.conv3'),
    Bad('checkpoint-wrong-architecture-2d', lambda d: _load(d / 'resnet50.pth'),
        CheckpointMismatchError, r'does not fit ResNetTSM'),
    Bad('checkpoint-missing-key', lambda d: _load(d / 'partial.pth', pretrained2d=False),
        CheckpointMismatchError, r'missing keys: conv1.conv.weight'),
]

CASES = CONSTRUCTION + FORWARD + REGISTRY + CHECKPOINT


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp('checkpoints')
    r50 = ResNetTSM(50, num_segments=T, pretrained=None).state_dict()
    torch.save(r50, d / 'resnet50.pth')
    data = (d / 'resnet50.pth').read_bytes()
    (d / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (d / 'garbage.pth').write_bytes(b'this is not a checkpoint\n' * 40)
    torch.save(nn.Linear(2, 2), d / 'module.pth')
    torch.save({'epoch': 3, 'note': 'no weights'}, d / 'no_tensors.pth')
    partial = _tsm().state_dict()
    del partial['conv1.conv.weight']
    torch.save(partial, d / 'partial.pth')
    return d


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Bad, checkpoints: Path) -> None:
    with pytest.raises(case.exc, match=case.match) as info:
        case.call(checkpoints)
    assert not isinstance(info.value, AssertionError)


def test_catalogue_is_what_docs_errors_says() -> None:
    """Unique ids; every case expects one of the exceptions docs/errors.md promises (never a
    RuntimeError, AssertionError or bare Exception); each kind has cases; the page states the
    catalogue's size."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    promised = (ValueError, TypeError, FileNotFoundError, KeyError)
    unclear = [c.id for c in CASES if not issubclass(c.exc, promised)]
    assert not unclear
    assert all(CASES_BY_KIND.values()) and sum(map(len, CASES_BY_KIND.values())) == len(CASES)
    page = (Path(__file__).parents[1] / 'docs' / 'errors.md').read_text()
    assert f'({len(CASES)} cases)' in page


CASES_BY_KIND = {'construction': CONSTRUCTION, 'forward': FORWARD, 'registry': REGISTRY,
                 'checkpoint': CHECKPOINT}


@pytest.mark.slow
@pytest.mark.parametrize('depth', [101, 152])
@pytest.mark.parametrize('num_stages', [1, 2])
def test_fewer_stages_build_and_run(depth: int, num_stages: int) -> None:
    """Not an error: fewer than 3 stages (no layer3) used to raise AttributeError."""
    model = _tsm(depth=depth, num_stages=num_stages, out_indices=(num_stages - 1,),
                 strides=(1, 2)[:num_stages], dilations=(1, 1)[:num_stages]).eval()
    shifted = [m for m in model.modules() if isinstance(m, TemporalShift)]
    blocks = sum(model.stage_blocks)
    assert len(shifted) == sum((b + 1) // 2 for b in model.stage_blocks) < blocks
    with torch.no_grad():
        assert model(torch.randn(2 * T, 3, 16, 16)).shape[0] == 2 * T
