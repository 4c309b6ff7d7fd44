"""A calibration folder is read with tsmnet.video (PyAV), searched recursively (the class-folder
tree of ``tsmnet finetune`` works), each clip one center view of the predict/stream protocol."""

from __future__ import annotations

import torch
from video_files import moving_frames, write_video

from tsmnet.deploy.calibration import calibration_clips
from tsmnet.video import FrameTransform, read_frames, sample_frames, single_view_protocol


def test_a_class_folder_tree_gives_center_views(tmp_path):
    for i, name in enumerate(('walk/a.mp4', 'run/deeper/b.mkv')):
        (tmp_path / name).parent.mkdir(parents=True)
        write_video(tmp_path / name, moving_frames(12, 40, 56, seed=i))
    (tmp_path / 'run' / 'notes.txt').write_text('not a video')
    clips = calibration_clips(tmp_path, (4, 3, 32, 32), needs_t=True,
                              unit_to_input=lambda unit: unit)
    assert [tuple(c.shape) for c in clips] == [(1, 4, 3, 32, 32)] * 2
    # the same pixels as stream's FrameTransform, in [0, 1] instead of normalised
    unit = FrameTransform(single_view_protocol(32)).protocol
    transform = FrameTransform(type(unit)(resize_short=unit.resize_short, crop='center',
                                          crop_size=32, mean=(0.0, 0.0, 0.0),
                                          std=(255.0, 255.0, 255.0)))
    frames = read_frames(tmp_path / 'run/deeper/b.mkv', sample_frames(12, 4))
    want = torch.stack([transform(f) for f in frames])
    torch.testing.assert_close(clips[0][0], want, rtol=0, atol=1e-6)  # sorted: run/ first
