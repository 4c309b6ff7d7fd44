"""``FrameSource``: a file delivers every frame in order; a live source (here a local HTTP
server) never waits for a slow consumer: it drops the oldest frames and counts them, holding
at most ``queue_size``; ``FrameTransform`` is one center view of the predict protocol."""

from __future__ import annotations

import functools
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from video_files import moving_frames, write_video

from tsmnet.video import (
    FrameSource,
    FrameTransform,
    TestProtocol,
    VideoError,
    VideoTransform,
    read_frames,
    single_view_protocol,
    source_kind,
)

FRAMES = 30


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp('live')
    frames = moving_frames(FRAMES, 36, 48, seed=2)
    write_video(root / 'clip.mp4', frames)
    write_video(root / 'clip.ts', frames)  # MPEG-TS: streamable, no seeking
    return root


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request lines on stderr
        pass


@pytest.fixture()
def http_server(clips):
    server = ThreadingHTTPServer(('127.0.0.1', 0),
                                 functools.partial(_QuietHandler, directory=str(clips)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize('source, kind', [
    (0, 'camera'), ('3', 'camera'), ('/dev/video2', 'camera'), ('-', 'pipe'),
    ('rtsp://cam.local/s', 'network'), ('HTTPS://x/y.m3u8', 'network'),
    ('udp://0.0.0.0:5000', 'network'), ('clip.mp4', 'file'), ('file://clip.mp4', 'file'),
])
def test_source_kinds(source, kind):
    assert source_kind(source) == kind


def test_a_file_delivers_every_frame_in_order(clips):
    with FrameSource(clips / 'clip.mp4', queue_size=1) as source:
        assert source.kind == 'file' and not source.live and not source.drop
        got = []
        for number, frame in source:
            time.sleep(0.005)  # slower than the decoder: a file waits
            got.append((number, frame))
    assert [n for n, _ in got] == list(range(FRAMES)) and source.dropped == 0
    np.testing.assert_array_equal(np.stack([f for _, f in got]), read_frames(clips / 'clip.mp4'))


def test_a_live_source_drops_the_oldest_frames_and_counts_them(clips, http_server):
    with FrameSource(f'{http_server}/clip.ts', queue_size=2) as source:
        assert source.kind == 'network' and source.live and source.drop
        numbers = []
        for number, frame in source:
            assert frame.shape == (36, 48, 3)
            numbers.append(number)
            time.sleep(0.05)  # a model much slower than the source
            assert len(source._frames) <= 2  # never more than the queue holds
    assert source.dropped > 0 and len(numbers) + source.dropped == FRAMES
    assert numbers == sorted(numbers) and numbers[-1] == FRAMES - 1  # the newest survive
    # the same stream, waiting for the consumer, delivers every frame
    with FrameSource(f'{http_server}/clip.ts', drop=False, queue_size=1) as source:
        assert [n for n, _ in source] == list(range(FRAMES)) and source.dropped == 0


def test_sources_that_do_not_open_fail_with_their_name(tmp_path, http_server):
    with pytest.raises(VideoError, match="video '.*nope.mp4': no such file"):
        FrameSource(tmp_path / 'nope.mp4')
    (tmp_path / 'text.mp4').write_text('not a video')
    with pytest.raises(VideoError, match="video '.*text.mp4': cannot be opened as a video"):
        FrameSource(tmp_path / 'text.mp4')
    with pytest.raises(VideoError, match="stream '.*missing.ts': cannot be opened"):
        FrameSource(f'{http_server}/missing.ts')
    with pytest.raises(ValueError, match='queue_size must be >= 1, got 0'):
        FrameSource(tmp_path / 'text.mp4', queue_size=0)


def test_frame_transform_is_one_center_view_of_the_protocol():
    frames = moving_frames(4, 50, 70, seed=1)
    protocol = single_view_protocol(32)
    assert (protocol.resize_short, protocol.crop, protocol.crop_size) == (37, 'center', 32)
    assert protocol.mean == TestProtocol().mean
    views = VideoTransform(TestProtocol(num_clips=4, resize_short=37, crop='center',
                                        crop_size=32))(frames)
    transform = FrameTransform(protocol)
    for t in range(4):
        assert transform(frames[t]).shape == (3, 32, 32)
        assert (transform(frames[t]) == views[0, t]).all()  # to the bit
    with pytest.raises(ValueError, match=r'frame must be \[H, W\] or \[H, W, C\]'):
        transform(frames)
