"""Frame messages: raw RGB and JPEG decode to the pixels sent, every malformed message is
refused with a message naming what was expected, and a frame becomes the model's input as the
clip transforms make it."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_serve import PROTOCOL
from video_files import moving_frames

from tsmnet.serve.frames import (
    MAX_PIXELS,
    Control,
    FrameError,
    decode_frame,
    parse_control,
    raw_frame,
    stream_input_size,
    to_model_input,
)
from tsmnet.video import TestProtocol, VideoTransform


def test_raw_frame_round_trip():
    frame = moving_frames(1, 30, 41, seed=1)[0]
    data = raw_frame(frame)
    assert data[:8] == b'RGB8' + struct.pack('<HH', 41, 30)
    np.testing.assert_array_equal(decode_frame(data), frame)


def test_jpeg_decodes_as_pillow_does():
    frame = moving_frames(1, 40, 52, seed=2)[0]
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format='JPEG', quality=95)
    decoded = decode_frame(out.getvalue())
    assert decoded.shape == (40, 52, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, np.asarray(Image.open(out).convert('RGB')))
    assert np.abs(decoded.astype(int) - frame).mean() < 12  # the same picture, lossy


def _jpeg_header_only(width: int, height: int) -> bytes:
    """A JPEG's start with a frame header claiming ``width`` x ``height``, and no pixels."""
    sof = b'\xff\xc0' + struct.pack('>HBHHB', 17, 8, height, width, 3) + bytes(9)
    return b'\xff\xd8' + sof + b'\xff\xd9'


@pytest.mark.parametrize('data,message', [
    (b'', 'unknown frame format'),
    (b'GIF89a...', "unknown frame format (first bytes b'GIF8')"),
    (b'RGB8\x10\x00', 'the header is 8 bytes'),
    (raw_frame(np.zeros((10, 10, 3), np.uint8))[:-1], 'expected 308 bytes'),
    (raw_frame(np.zeros((10, 10, 3), np.uint8)) + b'\x00', 'got 309'),
    (b'RGB8' + struct.pack('<HH', 7, 10) + bytes(210), 'must be within 8..4096'),
    (b'RGB8' + struct.pack('<HH', 4097, 10), 'must be within 8..4096'),
    (b'RGB8' + struct.pack('<HH', 4000, 4000), f'at most {MAX_PIXELS} pixels'),
    (b'\xff\xd8\xff\xe0 broken', 'not a decodable JPEG'),
    (_jpeg_header_only(5000, 5000), 'JPEG frame of 5000x5000'),  # refused before decoding
])
def test_malformed_frames_are_refused(data, message):
    with pytest.raises(FrameError) as info:
        decode_frame(data)
    assert message in str(info.value)


def test_control_messages():
    assert parse_control('{"type": "reset"}') == Control('reset')
    for text, message in [('reset', 'must be JSON'), ('[1]', 'unknown control message type'),
                          ('{"type": "pause"}', "type 'pause'")]:
        with pytest.raises(FrameError, match=message.replace('[', r'\[')):
            parse_control(text)


def test_model_input_is_the_center_crop_of_the_clip_transform():
    frames = moving_frames(4, 70, 90, seed=3)
    views = VideoTransform(PROTOCOL).from_sampled(frames)  # [1, 4, 3, 56, 56]
    size = stream_input_size(PROTOCOL)
    ours = torch.stack([to_model_input(f, PROTOCOL, size) for f in frames])
    torch.testing.assert_close(ours, views[0], rtol=0, atol=0)


def test_three_crop_protocols_stream_the_validation_crop():
    assert stream_input_size(TestProtocol(crop='three', crop_size=256)) == 224
    assert stream_input_size(TestProtocol(crop='ten', crop_size=224)) == 224
    assert stream_input_size(PROTOCOL) == 56


def test_raw_frame_checks_its_input():
    with pytest.raises(ValueError, match=r'rgb must be \[H, W, 3\] uint8'):
        raw_frame(np.zeros((4, 4), np.uint8))
