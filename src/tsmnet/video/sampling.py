"""Which frames MMAction2's test pipeline reads: ``SampleFrames`` and ``DenseSampleFrames``.

Pure functions from a frame count to frame indices, in the order MMAction2 stacks them
(segment after segment, and for ``twice_sample`` the shifted segments first). They follow
MMAction2 1.2.0's test mode (``test_mode=True``, ``out_of_bound_opt='loop'``,
``start_index=0``), including its float arithmetic, so the indices match it exactly.
"""

from __future__ import annotations

import numpy as np


def _check(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f'{name} must be an integer >= {least}, got {value!r}')


def sample_frames(num_frames: int, num_clips: int, clip_len: int = 1, frame_interval: int = 1,
                  twice_sample: bool = False) -> np.ndarray:
    """Frame indices of ``SampleFrames(..., test_mode=True)``.

    With ``clip_len=1`` (TSM, TSN) the video is cut into ``num_clips`` equal segments and the
    middle frame of each is taken (``floor((i + 0.5) * num_frames / num_clips)``);
    ``twice_sample`` appends the first frame of each segment. With ``clip_len > 1`` (3D
    models) ``num_clips`` clips start evenly between the first frame and the last start.
    Indices past the end wrap around (``'loop'``), so a video shorter than ``num_clips``
    frames repeats frames, as MMAction2 does.

    Args:
        num_frames: frames in the video (>= 1).
        num_clips: segments (or clips) to sample.
        clip_len: frames per segment.
        frame_interval: the step between the frames of a segment.
        twice_sample: also take each segment's first frame (doubles the clips).

    Returns:
        ``[num_clips * clip_len]`` int64 indices (``[2 * num_clips * clip_len]`` with
        ``twice_sample``), segment-major.
    """
    _check('num_frames', num_frames, 1)
    _check('num_clips', num_clips, 1)
    _check('clip_len', clip_len, 1)
    _check('frame_interval', frame_interval, 1)
    if clip_len == 1:
        avg_interval = num_frames / float(num_clips)
        base_offsets = np.arange(num_clips) * avg_interval
        offsets = base_offsets + avg_interval / 2.0
        if twice_sample:
            offsets = np.concatenate([offsets, base_offsets])
    else:
        ori_clip_len = (clip_len - 1) * frame_interval + 1
        max_offset = max(num_frames - ori_clip_len, 0)
        clips = num_clips * 2 if twice_sample else num_clips
        if clips > 1:
            # MMAction2 divides by num_clips - 1 even with twice_sample (and by zero when
            # num_clips == 1 with twice_sample: it warns and yields nan; we refuse instead)
            if num_clips == 1:
                raise ValueError('twice_sample with num_clips=1 and clip_len > 1 is undefined')
            offsets = np.round(np.arange(clips) * (max_offset / float(num_clips - 1)))
        else:
            offsets = np.array([max_offset // 2])
    inds = (offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval).reshape(-1)
    return np.mod(inds, num_frames).astype(np.int32).astype(np.int64)


def dense_sample_frames(num_frames: int, num_clips: int, clip_len: int = 1,
                        frame_interval: int = 1, sample_range: int = 64,
                        num_sample_positions: int = 10) -> np.ndarray:
    """Frame indices of ``DenseSampleFrames(..., test_mode=True)``.

    ``num_clips`` frames ``sample_range // num_clips`` apart form one clip; its start moves
    over ``num_sample_positions`` evenly spaced positions in ``[0, num_frames - sample_range]``
    (all at 0 for shorter videos), and indices wrap around the video's end.

    Args:
        num_frames: frames in the video (>= 1).
        num_clips: frames per dense clip.
        clip_len: frames per segment.
        frame_interval: the step between the frames of a segment.
        sample_range: the span of one dense clip, in frames.
        num_sample_positions: dense clips (start positions).

    Returns:
        ``[num_sample_positions * num_clips * clip_len]`` int64 indices, clip-major.
    """
    _check('num_frames', num_frames, 1)
    _check('num_clips', num_clips, 1)
    _check('clip_len', clip_len, 1)
    _check('frame_interval', frame_interval, 1)
    _check('sample_range', sample_range, 1)
    _check('num_sample_positions', num_sample_positions, 1)
    sample_position = max(1, 1 + num_frames - sample_range)
    interval = sample_range // num_clips
    starts = np.linspace(0, sample_position - 1, num=num_sample_positions, dtype=int)
    base = np.arange(num_clips) * interval
    offsets = ((base[None, :] + starts[:, None]) % num_frames).reshape(-1)
    inds = (offsets[:, None] + np.arange(clip_len)[None, :] * frame_interval).reshape(-1)
    return np.mod(inds, num_frames).astype(np.int64)


def train_sample_frames(num_frames: int, num_clips: int,
                        rng: np.random.RandomState | None = None) -> np.ndarray:
    """Frame indices of ``SampleFrames(clip_len=1, num_clips=...)`` in training mode.

    One frame at a random position in each of ``num_clips`` equal segments (TSN/TSM's
    segment-based sampling); a video with fewer frames than ``num_clips`` gives evenly spread
    indices, as MMAction2 does.

    Args:
        num_frames: frames in the video (>= 1).
        num_clips: segments.
        rng: the generator (``np.random``'s global one when None, as in MMAction2).

    Returns:
        ``[num_clips]`` int64 indices, in order.
    """
    _check('num_frames', num_frames, 1)
    _check('num_clips', num_clips, 1)
    rng = np.random.mtrand._rand if rng is None else rng
    avg_interval = num_frames // num_clips
    if avg_interval > 0:
        offsets = np.arange(num_clips) * avg_interval + rng.randint(avg_interval, size=num_clips)
    elif num_frames > num_clips:
        offsets = np.sort(rng.randint(num_frames, size=num_clips))
    else:
        offsets = np.around(np.arange(num_clips) * (num_frames / num_clips))
    return np.mod(offsets, num_frames).astype(np.int32).astype(np.int64)
