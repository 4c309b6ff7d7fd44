"""Sampled decoding: the frames of decoding from the start and of decord 0.6.0, to the bit, at
the cost of the samples; rotation metadata as ffmpeg's autorotate; damaged files refused."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from video_files import moving_frames, write_video

from tsmnet.video import DamagedVideoError, VideoError, VideoReader, probe, read_frames, rotation
from tsmnet.video.frame_index import FrameIndex
from tsmnet.video.sampling import sample_frames

decord = pytest.importorskip('decord')


def decode_from_start(path: Path) -> np.ndarray:
    """The reference: every frame decoded in order from the first, as RGB (the old reader)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return np.stack([f.to_ndarray(format='rgb24') for f in container.decode(stream)])


def write_vfr(path: Path, frames: np.ndarray, steps: list[int], time_base: Fraction) -> Path:
    """H.264 with B-frames whose frames are ``steps`` (cycled) time-base ticks apart."""
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = 'yuv420p'
        stream.options = {'bf': '3', 'g': '15'}
        stream.codec_context.time_base = time_base
        pts = 0
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format='rgb24')
            frame.pts, frame.time_base = pts, time_base
            pts += steps[i % len(steps)]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# name -> (suffix, codec, pix_fmt, encoder options, frames)
VIDEOS = {
    'h264-bframes-mp4': ('.mp4', 'libx264', 'yuv420p', {'bf': '3', 'g': '12'}, 90),
    'h264-bframes-mkv': ('.mkv', 'libx264', 'yuv420p', {'bf': '3', 'g': '20'}, 70),
    'h264-scenecut-off-444': ('.mp4', 'libx264', 'yuv444p', {'bf': '2', 'g': '9',
                                                             'sc_threshold': '0'}, 50),
    'mpeg4-bframes-avi': ('.avi', 'mpeg4', 'yuv420p', {'bf': '2', 'g': '12'}, 61),
    'mpeg4-mp4': ('.mp4', 'mpeg4', 'yuv420p', {'g': '10'}, 40),
    'mjpeg-avi': ('.avi', 'mjpeg', 'yuvj420p', {}, 20),
    'h264-bframes-ts': ('.ts', 'libx264', 'yuv420p', {'bf': '3', 'g': '30'}, 100),
    'vp9-webm': ('.webm', 'libvpx-vp9', 'yuv420p', {'g': '15', 'deadline': 'realtime'}, 40),
}


def index_sets(num_frames: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    last = num_frames - 1
    return [np.array([0]), np.array([last]), np.array([last, 0, last // 2, 0]),
            sample_frames(num_frames, 8), sample_frames(num_frames, 8, twice_sample=True),
            rng.integers(0, num_frames, 12),  # unsorted, with repeats
            np.sort(rng.choice(num_frames, 5, replace=False)),
            np.arange(3, num_frames, 7)[::-1]]


@pytest.fixture(scope='module', params=sorted(VIDEOS))
def video(request, tmp_path_factory) -> tuple[Path, np.ndarray]:
    suffix, codec, pix_fmt, options, n = VIDEOS[request.param]
    path = tmp_path_factory.mktemp('decode') / f'{request.param}{suffix}'
    write_video(path, moving_frames(n, 72, 96, seed=n), codec, pix_fmt, options=options)
    return path, decode_from_start(path)


# decord 0.6.0 seeks to the wrong frames in AVI with B-frames (its frame 30 is frame 20 of
# decoding from the start, 12 is 2): there it is compared reading every frame in order. In
# MPEG-TS its frames are a GOP late even in order (its frame 0 is frame 30): no reference.
DECORD_SEEKS_WRONG = {'mpeg4-bframes-avi'}
DECORD_WRONG = {'h264-bframes-ts'}


def _no_fallback(self, unique):
    raise AssertionError('decoded from the start: frames were not found by timestamp')


def test_sampled_frames_equal_decoding_from_the_start_and_decord(video, monkeypatch):
    path, every = video
    monkeypatch.setattr(VideoReader, '_read_from_start', _no_fallback)
    reader = decord.VideoReader(str(path))
    assert probe(path).num_frames == len(reader) == len(every)
    in_order = reader.get_batch(list(range(len(every)))).asnumpy() \
        if path.stem in DECORD_SEEKS_WRONG else None
    with VideoReader(path, threads=2) as ours:
        assert ours.index.seekable  # frames found by timestamp, not by counting
        for seed, indices in enumerate(index_sets(len(every), seed=len(every))):
            got = ours.read(indices)  # one open reader: seeks back and forth
            assert got.shape == (len(indices), *every.shape[1:]) and got.dtype == np.uint8
            np.testing.assert_array_equal(got, every[indices], err_msg=f'{indices}')
            if path.stem not in DECORD_WRONG:
                theirs = reader.get_batch(indices).asnumpy() if in_order is None \
                    else in_order[indices]
                np.testing.assert_array_equal(got, theirs)
            np.testing.assert_array_equal(read_frames(path, indices, threads=seed % 3), got)
    np.testing.assert_array_equal(read_frames(path), every)
    monkeypatch.undo()
    with VideoReader(path) as ours:  # the fallback itself: counting frames from the start
        np.testing.assert_array_equal(ours._read_from_start(np.array([2, 9]))[9], every[9])


@pytest.mark.parametrize('time_base, steps, suffix', [
    (Fraction(1, 1000), [40, 33, 50, 41], '.mkv'),  # variable frame rate
    (Fraction(1001, 30000), [1], '.mp4'),  # NTSC's odd time base
    (Fraction(1, 90000), [3003, 3003, 6006], '.mp4'),
])
def test_variable_frame_rate_and_odd_time_bases(tmp_path, time_base, steps, suffix,
                                                monkeypatch):
    monkeypatch.setattr(VideoReader, '_read_from_start', _no_fallback)
    path = write_vfr(tmp_path / f'vfr{suffix}', moving_frames(45, 48, 64), steps, time_base)
    every = decode_from_start(path)
    indices = np.array([44, 0, 17, 16, 30, 30, 1, 43])
    got = read_frames(path, indices)
    np.testing.assert_array_equal(got, every[indices])
    np.testing.assert_array_equal(got, decord.VideoReader(str(path)).get_batch(indices)
                                  .asnumpy())


def test_cost_follows_the_samples_not_the_video(tmp_path):
    path = write_video(tmp_path / 'long.mp4', moving_frames(300, 32, 48), 'libx264',
                       options={'bf': '3', 'g': '25', 'sc_threshold': '0'})
    with VideoReader(path, threads=1) as video:
        assert video.index.keyframes.tolist() == list(range(0, 300, 25))
        video.read([290])
        assert video.decoded_frames <= 25  # from keyframe 275, not from frame 0
        before = video.decoded_frames
        video.read([280, 281, 283])  # one GOP: one seek, decoding forward
        assert video.decoded_frames - before <= 25
        before = video.decoded_frames
        video.read(sample_frames(300, 8))
        assert video.decoded_frames - before <= 8 * 25


def test_frame_index_counts_packets_in_presentation_order():
    index = FrameIndex.from_packets([(0, True, False), (3, False, False), (1, False, False),
                                     (2, False, False), (4, True, False), (6, False, True),
                                     (5, False, False)])
    assert index.pts.tolist() == list(range(7)) and index.keyframes.tolist() == [0, 4]
    assert index.damaged_from == 6
    assert (index.keyframe_before(3), index.keyframe_before(4), index.keyframe_before(6)) \
        == (0, 4, 4)
    assert index.frame_of(5) == 5 and index.frame_of(9) is None and index.seekable
    # a packet without a timestamp (or two sharing one): frames are counted instead
    assert not FrameIndex.from_packets([(0, True, False), (None, False, False)]).seekable
    assert not FrameIndex.from_packets([(0, True, False), (0, False, False)]).seekable


def test_bad_indices_are_refused(video):
    path, every = video
    n = len(every)
    with pytest.raises(VideoError, match=f'frame {n + 4} was asked for but only {n} frames'):
        read_frames(path, [0, n + 4])
    for bad in ([], [-1, 2], [0.5]):
        with pytest.raises(VideoError, match='non-negative integers and not empty'):
            read_frames(path, bad)


def ffmpeg_filters(image: np.ndarray, filters: tuple[str, ...]) -> np.ndarray:
    """``image`` ``[H, W, 3]`` through FFmpeg's own ``transpose``/``hflip``/``vflip`` filters."""
    graph = av.filter.Graph()
    last = graph.add_buffer(width=image.shape[1], height=image.shape[0], format='rgb24',
                            time_base=Fraction(1, 25))
    for name in filters:
        step = graph.add('transpose', name) if 'clock' in name else graph.add(name)
        last.link_to(step)
        last = step
    sink = graph.add('buffersink')
    last.link_to(sink)
    graph.configure()
    graph.push(av.VideoFrame.from_ndarray(image, format='rgb24'))
    return graph.pull().to_ndarray(format='rgb24')


@pytest.mark.parametrize('ops', [(), ('clock',), ('cclock',), ('cclock_flip',), ('clock_flip',),
                                 ('hflip',), ('vflip',), ('hflip', 'vflip')])
def test_orientation_steps_are_ffmpegs_filters(ops):
    image = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    np.testing.assert_array_equal(rotation.apply(image, ops), ffmpeg_filters(image, ops))


# (counter-clockwise degrees, hflip, vflip) written by PyAV -> the upright frame from the
# stored one: rotated counter-clockwise, then mirrored (PyAV's set_display_rotation)
ROTATIONS = [(90, False, False), (-90, False, False), (180, False, False), (270, False, False),
             (0, True, False), (0, False, True), (90, True, False), (-90, False, True),
             (180, True, False)]


@pytest.mark.parametrize('degrees, hflip, vflip', ROTATIONS)
def test_rotation_metadata_turns_frames_upright(tmp_path, degrees, hflip, vflip):
    stored = moving_frames(30, 48, 80)
    path = tmp_path / 'phone.mp4'
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.height, stream.width, stream.pix_fmt = 48, 80, 'yuv420p'
        stream.options = {'bf': '2', 'g': '10'}
        stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for image in stored:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    indices = [29, 3, 14]
    as_stored = read_frames(path, indices, autorotate=False)
    # (decord 0.6.0 turns 180 degrees as ffmpeg does, fails on 90 and 270, and mirrors
    # otherwise: it is no reference here)
    np.testing.assert_array_equal(as_stored, decode_from_start(path)[indices])
    upright = np.rot90(as_stored, k=degrees // 90, axes=(1, 2))
    upright = upright[:, :, ::-1] if hflip else upright
    upright = upright[:, ::-1] if vflip else upright
    np.testing.assert_array_equal(read_frames(path, indices), upright)
    info = probe(path)
    assert (info.height, info.width) == upright.shape[1:3]
    assert (probe(path, autorotate=False).height, probe(path, autorotate=False).width) \
        == (48, 80)
    assert rotation.swaps_sides(info.orientation) == (degrees % 180 != 0)


def test_odd_rotation_angles_are_left_as_stored(caplog):
    matrix = [46341, -46341, 0, 46341, 46341, 0, 0, 0, 1 << 30]  # 45 degrees
    assert rotation.orientation(matrix) == ()
    assert 'not a multiple of 90' in caplog.text
    assert rotation.orientation(None) == ()
    with pytest.raises(ValueError, match='9 entries'):
        rotation.orientation([1, 0, 0])


def write_faststart(path: Path, frames: np.ndarray) -> Path:
    """MP4 with its index first (``movflags=faststart``): a cut file still opens."""
    with av.open(str(path), mode='w', options={'movflags': 'faststart'}) as container:
        stream = container.add_stream('libx264', rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt, stream.options = 'yuv420p', {'bf': '3', 'g': '20'}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def cut(path: Path, fraction: float) -> Path:
    out = path.with_name(f'cut_{path.name}')
    data = path.read_bytes()
    out.write_bytes(data[:int(len(data) * fraction)])
    return out


@pytest.mark.parametrize('kind', ['faststart-mp4', 'avi'])
def test_truncated_video_refuses_the_frames_it_lost(tmp_path, kind):
    frames = moving_frames(100, 64, 96)
    if kind == 'avi':
        whole = write_video(tmp_path / 'clip.avi', frames, 'mpeg4', options={'bf': '2', 'g': '20'})
    else:
        whole = write_faststart(tmp_path / 'clip.mp4', frames)
    every = decode_from_start(whole)
    damaged = cut(whole, 0.83)
    info = probe(damaged)  # the packets left are counted; nothing is decoded past the first
    assert 60 < info.num_frames < 100
    # the demuxer read the last packet short: known without decoding, the same every time
    # (the decoder's own corrupt flag can race with frame threading)
    assert info.damaged_from is not None and info.damaged_from < info.num_frames
    assert probe(whole).damaged_from is None
    for threads in (0, 1, 2, 2, 2):
        with pytest.raises(DamagedVideoError) as err:
            read_frames(damaged, [0, info.num_frames - 1], threads=threads)
        assert err.value.path == str(damaged) and err.value.frame == info.num_frames - 1
    assert str(damaged) in str(err.value) and f'frame {info.num_frames - 1} of ' \
        f'{info.num_frames}' in str(err.value)
    with pytest.raises(DamagedVideoError):
        read_frames(damaged)  # all frames: the same refusal, never a shorter clip
    intact = [0, 5, 30, 59]  # before the cut: read, and equal to the whole file's
    np.testing.assert_array_equal(read_frames(damaged, intact), every[intact])


def test_file_cut_between_packets_is_a_shorter_video(tmp_path):
    """Matroska cut mid-file: the demuxer drops the partial block; what is left is whole."""
    whole = write_video(tmp_path / 'clip.mkv', moving_frames(100, 64, 96), 'libx264',
                        options={'bf': '3', 'g': '20'})
    every = decode_from_start(whole)
    damaged = cut(whole, 0.5)
    n = probe(damaged).num_frames
    assert n == len(decord.VideoReader(str(damaged))) and n < 100
    np.testing.assert_array_equal(read_frames(damaged), every[:n])


def test_mp4_cut_before_its_index_cannot_be_read(tmp_path):
    whole = write_video(tmp_path / 'clip.mp4', moving_frames(30, 64, 96), 'libx264')
    damaged = cut(whole, 0.8)  # the moov atom is at the end: gone
    for read in (probe, read_frames):
        with pytest.raises(VideoError, match='cannot be read as a video') as err:
            read(damaged)
        assert err.value.path == str(damaged)


def test_stream_cut_at_the_front_decodes_from_its_first_keyframe(tmp_path):
    """MPEG-TS cut mid-GOP at the front (a capture started late): the packets before the first
    keyframe do not decode, and its parameter sets come only with that keyframe, so a seek to
    a later keyframe decodes nothing: the reader decodes from the start instead."""
    whole = write_video(tmp_path / 'clip.ts', moving_frames(100, 64, 96), 'libx264',
                        options={'bf': '3', 'g': '30'})
    data = whole.read_bytes()
    damaged = tmp_path / 'late.ts'
    damaged.write_bytes(data[len(data) // 3 // 188 * 188:])  # whole 188-byte TS packets
    decodable = decode_from_start(damaged)
    assert probe(damaged).num_frames > len(decodable)  # the probe decodes its first keyframe
    with VideoReader(damaged) as video:
        first = int(video.index.keyframes[0])
        assert len(video) == first + len(decodable)
        indices = [len(video) - 1, first + 3, first]
        np.testing.assert_array_equal(video.read(indices),
                                      decodable[[i - first for i in indices]])
        with pytest.raises(DamagedVideoError, match=f'frame {first - 1} of {len(video)} '
                           'cannot be decoded'):
            video.read([first - 1])
