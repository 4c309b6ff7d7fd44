"""Whole pipelines on video files the tests write: the training pipeline equals MMAction2's TSM
``train_pipeline`` (decord, its transforms, its data preprocessor) given the same draws, and
the validation pipeline equals MMAction2's ``val_pipeline`` exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.data import EvalPipeline, TrainPipeline, augment
from tsmnet.video import TestProtocol, probe, transforms

pytest.importorskip('decord')
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
TRAIN = [dict(type='DecordInit'),
         dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8),
         dict(type='DecordDecode'), dict(type='Resize', scale=(-1, 256)),
         dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66),
              random_crop=False, max_wh_scale_gap=1, num_fixed_crops=13),
         dict(type='Resize', scale=(224, 224), keep_ratio=False),
         dict(type='Flip', flip_ratio=0.5), dict(type='FormatShape', input_format='NCHW'),
         dict(type='PackActionInputs')]
VAL = [dict(type='DecordInit'),
       dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8, test_mode=True),
       dict(type='DecordDecode'), dict(type='Resize', scale=(-1, 256)),
       dict(type='CenterCrop', crop_size=224), dict(type='FormatShape', input_format='NCHW'),
       dict(type='PackActionInputs')]


def mmaction_inputs(path, pipeline) -> torch.Tensor:
    """MMAction2's pipeline and ActionDataPreprocessor on one file: ``[T, 3, H, W]``."""
    from mmaction.models.data_preprocessors import ActionDataPreprocessor
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    init_default_scope('mmaction')
    data = Compose(pipeline)(dict(filename=str(path), label=0, start_index=0, modality='RGB'))
    pre = ActionDataPreprocessor(mean=MEAN, std=STD, format_shape='NCHW')
    return pre(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
               False)['inputs'][0]


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp('videos')
    return {name: write_video(root / f'{name}.mp4', moving_frames(n, h, w, seed=n))
            for name, (n, h, w) in {'landscape': (50, 120, 160), 'portrait': (21, 144, 112),
                                    'short': (5, 96, 128)}.items()}


def _replay(monkeypatch, seed: int, num_frames: int, height: int, width: int) -> None:
    """MMAction2's random calls return what TrainPipeline draws from ``default_rng(seed)``,
    in the pipeline's order: frame offsets, crop size, crop offset, flip."""
    import mmaction.datasets.transforms.processing as processing

    rng = np.random.default_rng(seed)
    interval = num_frames // 8
    offsets = rng.integers(interval, size=8) if interval else None
    short = transforms.resize_short_side(np.zeros((1, height, width, 3), np.uint8), 256).shape
    sizes, steps = augment.multi_scale_crop_candidates(short[1], short[2], 224)
    picks = [int(rng.integers(len(sizes))), int(rng.integers(len(steps)))]
    flip = rng.random()
    monkeypatch.setattr(np.random, 'randint', lambda high, size=None: offsets)
    monkeypatch.setattr(processing.random, 'choice', lambda seq: seq[picks.pop(0)])
    monkeypatch.setattr(np.random, 'rand', lambda: flip)


@pytest.mark.parametrize('name', ['landscape', 'portrait', 'short'])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_train_pipeline_equals_mmactions_given_the_draws(name, seed, videos, monkeypatch,
                                                         mmaction_models):
    path = videos[name]
    info = probe(path)
    ours = TrainPipeline(num_segments=8)(np.random.default_rng(seed), path, info.num_frames)
    _replay(monkeypatch, seed, info.num_frames, info.height, info.width)
    theirs = mmaction_inputs(path, TRAIN)
    assert ours.shape == (8, 3, 224, 224)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize('name', ['landscape', 'portrait', 'short'])
def test_validation_pipeline_equals_mmactions(name, videos, mmaction_models):
    path = videos[name]
    ours = EvalPipeline.validation(TestProtocol())(None, path, probe(path).num_frames)
    torch.testing.assert_close(ours, mmaction_inputs(path, VAL), rtol=0, atol=0)


def test_test_pipeline_keeps_the_views(videos):
    path = videos['landscape']
    protocol = TestProtocol(crop='three', crop_size=256)
    views = EvalPipeline(protocol)(None, path, probe(path).num_frames)
    assert views.shape == (3, 8, 3, 256, 256)
    one = EvalPipeline.validation(protocol, num_segments=4)(None, path, 50)
    assert one.shape == (4, 3, 256, 256)  # the centre crop keeps the protocol's size
