"""``ClipNormalizer``: uint8 clips from a pipeline with ``normalize=False``, normalised a batch
at a time, are the bits of the pipeline's own normalised clips (so ``tsmnet finetune``, which
trains this way, still equals MMAction2's pipeline and data preprocessor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.data import ClipNormalizer, EvalPipeline, TrainPipeline
from tsmnet.video import TestProtocol, probe


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp('videos') / 'v.mp4', moving_frames(30, 72, 96))


@pytest.mark.parametrize('channels_last', [False, True])
def test_uint8_train_clips_normalised_in_a_batch_are_the_pipelines_bits(video, channels_last):
    small = dict(num_segments=4, resize_short=40, input_size=32)
    frames = probe(video).num_frames
    floats = torch.stack([TrainPipeline(**small)(np.random.default_rng(s), video, frames)
                          for s in range(3)])
    raw = torch.stack([TrainPipeline(**small, normalize=False)(np.random.default_rng(s), video,
                                                                frames) for s in range(3)])
    assert raw.dtype == torch.uint8 and raw.shape == floats.shape == (3, 4, 3, 32, 32)
    got = ClipNormalizer(channels_last=channels_last)(raw)
    assert got.dtype == torch.float32
    assert torch.equal(got, floats)
    if channels_last:
        assert got.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)


def test_uint8_eval_views_normalised_are_the_pipelines_bits(video):
    protocol = TestProtocol(resize_short=40, crop_size=40, crop='three', num_clips=4)
    frames = probe(video).num_frames
    floats = EvalPipeline(protocol)(None, video, frames)
    raw = EvalPipeline(protocol, normalize=False)(None, video, frames)
    assert raw.dtype == torch.uint8 and raw.shape == floats.shape == (3, 4, 3, 40, 40)
    assert torch.equal(ClipNormalizer(protocol.mean, protocol.std)(raw), floats)
    one = EvalPipeline.validation(protocol, normalize=False)(None, video, frames)
    assert one.dtype == torch.uint8 and one.shape == (4, 3, 40, 40)


def test_float_clips_pass_unchanged_but_take_the_layout():
    clips = torch.randn(2, 3, 3, 8, 8)
    assert ClipNormalizer()(clips) is clips
    laid = ClipNormalizer(channels_last=True)(clips)
    assert torch.equal(laid, clips) and laid.flatten(0, 1).is_contiguous(
        memory_format=torch.channels_last)


@pytest.mark.parametrize('kwargs, message', [
    (dict(mean=(1.0, 2.0)), 'mean and std must have 3 values'),
    (dict(std=(1.0, 0.0, 1.0)), 'std must be positive')])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClipNormalizer(**kwargs)


@pytest.mark.parametrize('clips, kwargs, error, message', [
    (torch.zeros(2, 4, 8, 8, dtype=torch.uint8), {}, ValueError, r'\[\.\.\., 3, H, W\]'),
    (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), dict(channels_last=True), ValueError,
     r'channels_last needs clips \[N, T, 3, H, W\]'),
    (torch.zeros(1, 4, 3, 8, 8, dtype=torch.int32), {}, TypeError, 'uint8 .* or float')])
def test_bad_clips_are_named(clips, kwargs, error, message):
    with pytest.raises(error, match=message):
        ClipNormalizer(**kwargs)(clips)
