"""Each training augmentation equals MMAction2 1.2.0's own transform given the same random
choices: our draws are replayed into MMAction2's random calls (``random.choice`` in
``MultiScaleCrop``, ``np.random.randint`` in ``SampleFrames``), then params and frames are
compared to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from tsmnet.data import augment

pytest.importorskip('mmaction')
SCALES = (1, 0.875, 0.75, 0.66)


def _mmaction_transform(name: str, **kwargs):
    from mmaction.datasets import transforms

    return getattr(transforms, name)(**kwargs)


def _replay_choices(monkeypatch, picks: list[int]) -> None:
    """MMAction2's ``random.choice(seq)`` returns ``seq[pick]`` for our picks, in order."""
    import mmaction.datasets.transforms.processing as processing

    queue = list(picks)
    monkeypatch.setattr(processing.random, 'choice', lambda seq: seq[queue.pop(0)])


@pytest.mark.parametrize('height,width', [(256, 340), (256, 256), (341, 256), (256, 455)])
@pytest.mark.parametrize('seed', range(6))
def test_multi_scale_crop_equals_mmactions(height, width, seed, monkeypatch):
    frames = np.random.default_rng(seed).integers(0, 256, (2, height, width, 3), np.uint8)
    box = augment.draw_multi_scale_crop(np.random.default_rng(seed), height, width, 224, SCALES)
    replay = np.random.default_rng(seed)  # the same two draws: a size, then an offset
    sizes, steps = augment.multi_scale_crop_candidates(height, width, 224, SCALES)
    picks = [int(replay.integers(len(sizes))), int(replay.integers(len(steps)))]
    _replay_choices(monkeypatch, picks)
    theirs = _mmaction_transform('MultiScaleCrop', input_size=224, scales=SCALES,
                                 random_crop=False, max_wh_scale_gap=1, num_fixed_crops=13)
    out = theirs.transform(dict(imgs=list(frames), img_shape=(height, width)))
    x0, y0, x1, y1 = out['crop_bbox'].tolist()
    assert (box.x, box.y, box.x + box.width, box.y + box.height) == (x0, y0, x1, y1)
    np.testing.assert_array_equal(augment.apply_crop(frames, box), np.stack(out['imgs']))


def test_multi_scale_crop_draws_every_candidate():
    sizes, steps = augment.multi_scale_crop_candidates(256, 340, 224, SCALES)
    assert len(sizes) == 10 and len(steps) == 13  # 4 scales, gap 1: 4 + 2 * 3 pairs
    rng = np.random.default_rng(0)
    seen = {augment.draw_multi_scale_crop(rng, 256, 340) for _ in range(3000)}
    assert len({(b.width, b.height) for b in seen}) == 10
    assert all(b.x + b.width <= 340 and b.y + b.height <= 256 for b in seen)


@pytest.mark.parametrize('num_frames', [3, 8, 9, 31, 250])
def test_train_sampling_equals_mmactions(num_frames, monkeypatch):
    indices = augment.draw_frame_indices(np.random.default_rng(num_frames), num_frames, 8)
    interval = num_frames // 8
    replay = np.random.default_rng(num_frames)
    if interval:
        offsets = replay.integers(interval, size=8)

        def randint(high, size=None):
            assert (high, size) == (interval, 8)
            return offsets
        monkeypatch.setattr(np.random, 'randint', randint)
    theirs = _mmaction_transform('SampleFrames', clip_len=1, frame_interval=1, num_clips=8)
    out = theirs.transform(dict(total_frames=num_frames, start_index=0))
    np.testing.assert_array_equal(indices, out['frame_inds'])
    assert indices.dtype == np.int64 and len(indices) == 8


@pytest.mark.parametrize('flip', [False, True])
def test_flip_equals_mmactions(flip):
    frames = np.random.default_rng(0).integers(0, 256, (3, 20, 30, 3), np.uint8)
    theirs = _mmaction_transform('Flip', flip_ratio=1.0 if flip else 0.0)
    out = theirs.transform(dict(imgs=[f.copy() for f in frames], img_shape=(20, 30),
                                modality='RGB'))
    np.testing.assert_array_equal(augment.apply_flip(frames, flip), np.stack(out['imgs']))
    rng = np.random.default_rng(1)
    assert 0.45 < np.mean([augment.draw_flip(rng, 0.5) for _ in range(2000)]) < 0.55
    assert not any(augment.draw_flip(rng, 0.0) for _ in range(100))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='num_fixed_crops must be 5 or 13'):
        augment.multi_scale_crop_candidates(256, 256, num_fixed_crops=7)
    with pytest.raises(ValueError, match='flip_ratio must be in'):
        augment.draw_flip(np.random.default_rng(0), 2.0)
    with pytest.raises(ValueError, match='does not fit'):
        augment.apply_crop(np.zeros((1, 10, 10, 3), np.uint8), augment.CropBox(5, 0, 8, 8))
