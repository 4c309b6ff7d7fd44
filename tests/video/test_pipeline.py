"""A video file gives the tensor MMAction2's own test pipeline gives (decord, mmcv, its
ActionDataPreprocessor), and bad files give one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.video import TestProtocol, VideoError, VideoTransform, load_video, probe, read_frames

pytest.importorskip('decord')

K400 = [dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8, test_mode=True),
        dict(type='DecordDecode'), dict(type='Resize', scale=(-1, 256)),
        dict(type='TenCrop', crop_size=224), dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs')]
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _with(pipeline: list[dict], index: int, **changes) -> list[dict]:
    out = [dict(step) for step in pipeline]
    if 'type' in changes and changes['type'] != out[index]['type']:
        out[index] = {}
    out[index].update(changes)
    return out


def mmaction_inputs(path: Path, pipeline: list[dict]) -> torch.Tensor:
    """MMAction2's own test pipeline and data preprocessor: ``[M, 3, H, W]`` float32."""
    from mmaction.models.data_preprocessors import ActionDataPreprocessor
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    init_default_scope('mmaction')
    data = Compose(pipeline)(dict(filename=str(path), label=-1, start_index=0, modality='RGB'))
    pre = ActionDataPreprocessor(mean=MEAN, std=STD, format_shape='NCHW')
    out = pre(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), False)
    return out['inputs'][0]


# (pipeline changes, frames, height, width, codec, pix_fmt)
CASES = {
    'k400-tencrop': ({}, 40, 120, 160, 'libx264', 'yuv420p'),
    'centercrop': ({4: dict(type='CenterCrop', crop_size=224)}, 40, 120, 160, 'mpeg4',
                   'yuv420p'),
    'threecrop-portrait': ({4: dict(type='ThreeCrop', crop_size=256)}, 30, 160, 96, 'libx264',
                           'yuv420p'),
    'twice-sample': ({1: dict(twice_sample=True), 4: dict(type='ThreeCrop', crop_size=256)},
                     33, 96, 128, 'libx264', 'yuv444p'),
    'dense': ({1: dict(type='DenseSampleFrames', clip_len=1, frame_interval=1, num_clips=8,
                       test_mode=True, num_sample_positions=3)}, 90, 64, 80, 'mpeg4', 'yuv420p'),
    'short-video': ({}, 5, 64, 80, 'libx264', 'yuv420p'),
    'odd-size': ({4: dict(type='CenterCrop', crop_size=224)}, 20, 67, 91, 'ffv1', 'bgr0'),
    'grey': ({}, 12, 64, 96, 'ffv1', 'gray'),
    'mjpeg': ({}, 17, 72, 96, 'mjpeg', 'yuvj420p'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_file_gives_mmactions_input_tensor(case, tmp_path, mmaction_models):
    changes, n, h, w, codec, pix_fmt = CASES[case]
    pipeline = K400
    for index, change in changes.items():
        pipeline = _with(pipeline, index, **change)
    suffix = '.mkv' if codec == 'ffv1' else '.avi' if codec == 'mjpeg' else '.mp4'
    path = write_video(tmp_path / f'clip{suffix}', moving_frames(n, h, w), codec, pix_fmt)
    protocol = TestProtocol.from_pipeline(pipeline, mean=tuple(MEAN), std=tuple(STD))
    ours = load_video(path, protocol)
    theirs = mmaction_inputs(path, pipeline)
    assert ours.shape == (protocol.num_views, protocol.num_segments, *theirs.shape[1:])
    # the decoders agree to the bit on these files, so one grey level is not needed here
    torch.testing.assert_close(ours.reshape(theirs.shape), theirs, rtol=0, atol=0)


def test_rgba_video_loses_its_alpha(tmp_path):
    frames = moving_frames(10, 48, 64, channels=4)
    path = write_video(tmp_path / 'rgba.mkv', frames, 'ffv1', 'bgra', source_format='rgba')
    np.testing.assert_array_equal(read_frames(path), frames[..., :3])


def test_transform_of_decoded_frames_equals_load_video(tmp_path):
    path = write_video(tmp_path / 'clip.mp4', moving_frames(21, 64, 96), 'mpeg4')
    protocol = TestProtocol(crop='three', crop_size=64, resize_short=64, twice_sample=True)
    torch.testing.assert_close(VideoTransform(protocol)(read_frames(path)),
                               load_video(path, protocol), rtol=0, atol=0)


def test_probe_counts_frames_like_decord(tmp_path):
    import decord

    path = write_video(tmp_path / 'clip.mp4', moving_frames(23, 64, 96), 'libx264',
                       options={'bf': '3'})
    info = probe(path)
    assert (info.num_frames, info.height, info.width) == (len(decord.VideoReader(str(path))),
                                                          64, 96)
    assert info.fps == 25.0


def test_unreadable_files_give_one_clear_error(tmp_path):
    (tmp_path / 'text.mp4').write_text('not a video at all\n' * 50)
    (tmp_path / 'empty.mp4').write_bytes(b'')
    cases = {tmp_path / 'missing.mp4': 'no such file', tmp_path: 'not a file',
             tmp_path / 'text.mp4': 'cannot be read as a video',
             tmp_path / 'empty.mp4': 'cannot be read as a video'}
    for path, message in cases.items():
        with pytest.raises(VideoError, match=message) as err:
            load_video(path)
        assert str(path) in str(err.value) and '\n' not in str(err.value)


def test_truncated_video_names_the_missing_frame(tmp_path):
    path = write_video(tmp_path / 'clip.mp4', moving_frames(30, 64, 96), 'mpeg4')
    with pytest.raises(VideoError, match='frame 40 was asked for but only 30 frames'):
        read_frames(path, [0, 40])


def test_protocol_from_pipeline_refuses_what_it_cannot_express():
    with pytest.raises(ValueError, match="step 'RandomCrop' is not supported"):
        TestProtocol.from_pipeline(_with(K400, 4, type='RandomCrop', size=224))
    with pytest.raises(ValueError, match='SampleFrames must have test_mode=True'):
        TestProtocol.from_pipeline(_with(K400, 1, test_mode=False))
    with pytest.raises(ValueError, match=r'Resize: only scale=\(-1, N\)'):
        TestProtocol.from_pipeline(_with(K400, 3, scale=(224, 224)))
    with pytest.raises(ValueError, match='TestProtocol.crop must be one of'):
        TestProtocol(crop='five')


def test_protocol_views():
    p = TestProtocol()
    assert (p.num_views, p.num_segments) == (10, 8)
    assert p.with_views(clips=2, crops=3) == TestProtocol(twice_sample=True, crop='three',
                                                          crop_size=256)
    assert TestProtocol(dense=True, num_test_clips=10).with_views(clips=4).num_views == 40
