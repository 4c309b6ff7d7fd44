"""What a client sends on ``/v1/stream``: frames (JPEG, or raw RGB behind a small header) and
control messages, decoded and checked before anything reaches the model.

Every check raises :class:`FrameError` with a message meant for the client; the server sends
it back on that stream only and goes on.

The raw format is 8 bytes of header, then the pixels::

    b'RGB8'  uint16 width  uint16 height   (little-endian)   width * height * 3 bytes RGB

A JPEG is recognised by its first two bytes (``FF D8``) and decoded with Pillow, whose size is
read from the header before any pixel is decoded, so a huge image is refused cheaply.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from ..video import TestProtocol, transforms

RAW_MAGIC = b'RGB8'
RAW_HEADER = struct.Struct('<4sHH')
JPEG_MAGIC = b'\xff\xd8'
MAX_SIDE = 4096  # the largest width or height accepted, JPEG or raw
MAX_PIXELS = 2048 * 1152  # and the largest area: a raw frame of it is 7.1 MB (2K video)
MIN_SIDE = 8
CONTROL_TYPES = ('reset',)


class FrameError(ValueError):
    """A message the server cannot use; the text is sent to the client as is."""


@dataclass(frozen=True)
class Control:
    """A control message: ``{"type": "reset"}`` clears the stream's shift buffers and window."""

    type: Literal['reset']


def raw_frame(rgb: np.ndarray) -> bytes:
    """``[H, W, 3]`` uint8 RGB as a raw frame message (header + pixels)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'rgb must be [H, W, 3] uint8, got {rgb.dtype} {list(rgb.shape)}')
    height, width = rgb.shape[:2]
    return RAW_HEADER.pack(RAW_MAGIC, width, height) + np.ascontiguousarray(rgb).tobytes()


def _check_size(width: int, height: int, what: str) -> None:
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) or \
            width * height > MAX_PIXELS:
        raise FrameError(f'{what} frame of {width}x{height}: width and height must be within '
                         f'{MIN_SIDE}..{MAX_SIDE} pixels and the area at most {MAX_PIXELS} '
                         f'pixels')


def decode_frame(data: bytes) -> np.ndarray:
    """A frame message as ``[H, W, 3]`` uint8 RGB.

    Raises:
        FrameError: Neither a JPEG nor a raw frame, a size out of bounds, a raw frame whose
            length does not match its header, or a JPEG that does not decode.
    """
    if data[:2] == JPEG_MAGIC:
        try:
            with Image.open(io.BytesIO(data), formats=('JPEG',)) as image:
                _check_size(image.width, image.height, 'JPEG')
                rgb = np.asarray(image.convert('RGB'))
        except FrameError:
            raise
        except Exception as err:  # Pillow raises several types for a broken file
            raise FrameError(f'not a decodable JPEG ({type(err).__name__}: '
                             f'{" ".join(str(err).split())[:120]})') from None
        return rgb
    if data[:4] == RAW_MAGIC:
        if len(data) < RAW_HEADER.size:
            raise FrameError(f'raw frame: the header is {RAW_HEADER.size} bytes (RGB8, uint16 '
                             f'width, uint16 height), got {len(data)} bytes')
        _, width, height = RAW_HEADER.unpack_from(data)
        _check_size(width, height, 'raw')
        expected = RAW_HEADER.size + width * height * 3
        if len(data) != expected:
            raise FrameError(f'raw frame of {width}x{height}: expected {expected} bytes (8 of '
                             f'header + width * height * 3), got {len(data)}')
        pixels = np.frombuffer(data, np.uint8, offset=RAW_HEADER.size)
        return pixels.reshape(height, width, 3).copy()  # writable: torch warns on read-only
    raise FrameError(f'unknown frame format (first bytes {data[:4]!r}): send a JPEG (FF D8 ...) '
                     f'or a raw frame (RGB8, uint16 width, uint16 height, then RGB bytes)')


def parse_control(text: str) -> Control:
    """A text message as a :class:`Control`.

    Raises:
        FrameError: Not JSON, or not an object with a known ``type``.
    """
    try:
        message: Any = json.loads(text)
    except ValueError:
        raise FrameError(f'text messages must be JSON like {{"type": "reset"}}, got '
                         f'{text[:60]!r}') from None
    kind = message.get('type') if isinstance(message, dict) else None
    if kind not in CONTROL_TYPES:
        raise FrameError(f'unknown control message type {kind!r}: expected one of '
                         f'{list(CONTROL_TYPES)}')
    return Control(kind)


def stream_input_size(protocol: TestProtocol) -> int:
    """The side of the square a streamed frame is cropped to.

    The protocol's crop size, except for ``ThreeCrop`` protocols, whose crops span the short
    side (256): there the stream takes MMAction2's validation crop, 7/8 of the short side
    (224 of 256), as the model was trained.
    """
    if protocol.crop == 'three':
        return protocol.resize_short * 7 // 8
    return protocol.crop_size


def to_model_input(rgb: np.ndarray, protocol: TestProtocol, size: int) -> torch.Tensor:
    """One frame as the model takes it: short side resized to ``protocol.resize_short``
    (bilinear, as MMAction2's ``Resize``), a center crop of ``size``, normalised.

    Args:
        rgb: ``[H, W, 3]`` uint8.
        protocol: Resize and normalisation.
        size: The crop's side (:func:`stream_input_size`).

    Returns:
        ``[3, size, size]`` float32.
    """
    resized = transforms.resize_short_side(rgb[None], protocol.resize_short)
    crop = transforms.center_crop(resized, size)[0]  # [1, size, size, 3]
    return transforms.normalize(crop, protocol.mean, protocol.std)[0]
