"""Frame indices equal MMAction2's SampleFrames / DenseSampleFrames in test mode."""

from __future__ import annotations

import numpy as np
import pytest

from tsmnet.video import dense_sample_frames, sample_frames

pytest.importorskip('mmaction')
from mmaction.datasets.transforms import DenseSampleFrames, SampleFrames  # noqa: E402

FRAME_COUNTS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 301]


def _theirs(transform, num_frames: int) -> np.ndarray:
    out = transform.transform(dict(total_frames=num_frames, start_index=0))
    return out['frame_inds']


@pytest.mark.parametrize('num_frames', FRAME_COUNTS)
@pytest.mark.parametrize('num_clips,clip_len,interval,twice', [
    (8, 1, 1, False), (8, 1, 1, True), (16, 1, 1, False), (16, 1, 1, True), (3, 1, 4, False),
    (1, 1, 1, False), (4, 8, 2, False), (2, 4, 1, True), (1, 16, 1, False),
])
def test_sample_frames_equals_mmaction(num_frames, num_clips, clip_len, interval, twice):
    theirs = SampleFrames(clip_len=clip_len, frame_interval=interval, num_clips=num_clips,
                          twice_sample=twice, test_mode=True)
    ours = sample_frames(num_frames, num_clips, clip_len, interval, twice)
    np.testing.assert_array_equal(ours, _theirs(theirs, num_frames))


@pytest.mark.parametrize('num_frames', FRAME_COUNTS)
@pytest.mark.parametrize('num_clips,positions,sample_range', [(8, 10, 64), (8, 2, 32), (4, 1, 64)])
def test_dense_sample_frames_equals_mmaction(num_frames, num_clips, positions, sample_range):
    theirs = DenseSampleFrames(clip_len=1, frame_interval=1, num_clips=num_clips,
                               num_sample_positions=positions, sample_range=sample_range,
                               test_mode=True)
    ours = dense_sample_frames(num_frames, num_clips, 1, 1, sample_range, positions)
    np.testing.assert_array_equal(ours, _theirs(theirs, num_frames))


def test_short_video_repeats_frames():
    # fewer frames than segments: every segment still gets a frame, some repeat (MMAction2)
    np.testing.assert_array_equal(sample_frames(3, 8), [0, 0, 0, 1, 1, 2, 2, 2])


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_frames=0, num_clips=8), 'num_frames must be an integer >= 1, got 0'),
    (dict(num_frames=10, num_clips=0), 'num_clips must be an integer >= 1'),
    (dict(num_frames=10, num_clips=2.5), 'num_clips must be an integer'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_frames(**kwargs)


@pytest.mark.parametrize('num_frames', FRAME_COUNTS)
@pytest.mark.parametrize('num_clips', [1, 3, 8, 16])
def test_train_sample_frames_equals_mmaction(num_frames, num_clips):
    from tsmnet.video.sampling import train_sample_frames

    theirs = SampleFrames(clip_len=1, frame_interval=1, num_clips=num_clips)
    np.random.seed(num_frames)
    want = _theirs(theirs, num_frames)
    np.random.seed(num_frames)
    np.testing.assert_array_equal(train_sample_frames(num_frames, num_clips), want)
    rng = np.random.RandomState(num_frames)
    np.testing.assert_array_equal(train_sample_frames(num_frames, num_clips, rng), want)
