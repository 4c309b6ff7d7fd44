"""Frames from a file, a camera, a network stream or a pipe, decoded ahead in a thread.

:class:`FrameSource` opens any source FFmpeg reads (through PyAV) and decodes it in a
background thread into a small bounded queue, so decoding overlaps the model. What happens
when the queue is full depends on the source:

- a **live** source (a camera, a network stream, a pipe) does not wait for the model: the
  oldest queued frame is dropped and counted (:attr:`FrameSource.dropped`); memory stays
  bounded however slow the model is, and the model always sees the newest frames;
- a **file** waits: every frame is delivered, in order.

Sources (:func:`source_kind` tells which a string is):

- a camera: an integer ``N`` or ``/dev/videoN`` (Linux, FFmpeg's ``v4l2`` input; macOS:
  ``avfoundation`` with the index);
- a network stream: a URL, ``rtsp://``, ``rtmp://``, ``http://``, ``https://``, ``udp://``,
  ``tcp://``, ``srt://`` (RTSP over TCP by default: it passes NATs and loses no packets);
- ``-``: standard input, a pipe (give ``input_format`` for formats FFmpeg cannot guess from
  their first bytes, such as raw ``mjpeg``);
- anything else: a video file.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Literal

import numpy as np

from . import rotation
from .errors import DamagedVideoError, VideoError
from .reader import _displaymatrix

try:  # an extra (tsmnet[video])
    import av
except ImportError:  # pragma: no cover - exercised where PyAV is not installed
    av = None

__all__ = ['NETWORK_SCHEMES', 'FrameSource', 'source_kind']

logger = logging.getLogger(__name__)

NETWORK_SCHEMES: tuple[str, ...] = ('rtsp', 'rtsps', 'rtmp', 'rtmps', 'http', 'https', 'udp',
                                    'tcp', 'srt', 'rtp', 'hls')
SourceKind = Literal['file', 'camera', 'network', 'pipe']


def source_kind(source: str | int) -> SourceKind:
    """What ``source`` names: ``'camera'`` (an int or ``/dev/videoN``), ``'network'`` (a URL
    of :data:`NETWORK_SCHEMES`), ``'pipe'`` (``'-'``) or ``'file'``."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return 'camera'
    text = os.fspath(source)
    if text == '-':
        return 'pipe'
    if text.startswith('/dev/video'):
        return 'camera'
    scheme, sep, _ = text.partition('://')
    if sep and scheme.lower() in NETWORK_SCHEMES:
        return 'network'
    return 'file'


def _camera(source: str | int) -> tuple[str, str]:
    """The FFmpeg input (device, format) of a camera on this platform."""
    text = str(source)
    if sys.platform == 'darwin':
        return text.removeprefix('/dev/video'), 'avfoundation'
    if sys.platform.startswith('win'):
        raise VideoError('cameras by number are read on Linux (v4l2) and macOS '
                         "(avfoundation); on Windows pass input_format='dshow' and "
                         "source='video=<camera name>'", text)
    return (text if text.startswith('/dev/') else f'/dev/video{text}'), 'v4l2'


class FrameSource:
    """Frames of a video source, decoded ahead in a thread, as ``(number, [H, W, 3] uint8
    RGB)``.

    Args:
        source: a file path, a camera (``int``, ``'N'`` or ``'/dev/videoN'``), a URL, or
            ``'-'`` for standard input (see :func:`source_kind`).
        input_format: FFmpeg's input format (``'v4l2'``, ``'mjpeg'``, ``'mpegts'``...;
            default: guessed, ``v4l2``/``avfoundation`` for cameras).
        options: FFmpeg options of the input (``{'video_size': '640x480', 'framerate':
            '30'}`` for a camera; ``{'rtsp_transport': 'udp'}``...).
        drop: drop the oldest queued frame when the queue is full instead of waiting (default:
            True for live sources, False for files).
        queue_size: frames decoded ahead (at least 1).
        timeout: seconds to wait for a network source to open or send data.
        autorotate: turn file frames upright by their rotation metadata, as
            :func:`~.decode.read_frames` does.

    Raises:
        VideoError: when the source cannot be opened or has no video stream.

    Example:
        >>> with FrameSource('rtsp://camera.local/stream') as source:  # doctest: +SKIP
        ...     for number, frame in source:
        ...         ...  # frames the model was too slow for are counted in source.dropped
    """

    def __init__(self, source: str | int | os.PathLike, *, input_format: str | None = None,
                 options: Mapping[str, str] | None = None, drop: bool | None = None,
                 queue_size: int = 2, timeout: float = 10.0, autorotate: bool = True) -> None:
        if av is None:
            raise VideoError("reading video needs PyAV: pip install 'tsmnet[video]'",
                             str(source))
        if queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        source = source if isinstance(source, int) else os.fspath(source)
        self.kind: SourceKind = source_kind(source)
        self.name = str(source)
        self.live = self.kind != 'file'
        self.drop = self.live if drop is None else bool(drop)
        self.queue_size = queue_size
        self.autorotate = autorotate and self.kind == 'file'
        self.dropped = 0  # frames decoded but never delivered (the model was slower)
        self.decoded = 0
        self._container = self._open(source, input_format, dict(options or {}), timeout)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = 'AUTO'
        self._frames: deque[tuple[int, np.ndarray]] = deque()
        self._ready = threading.Condition()
        self._done = False
        self._stop = False
        self._error: VideoError | None = None
        self._orientation: rotation.Orientation | None = None
        self._thread = threading.Thread(target=self._decode, name=f'FrameSource({self.name})',
                                        daemon=True)
        self._thread.start()

    def _open(self, source: str | int, input_format: str | None, options: dict[str, str],
              timeout: float) -> av.container.InputContainer:
        target = str(source)
        if self.kind == 'camera':
            target, default_format = _camera(source)
            input_format = input_format or default_format
        elif self.kind == 'pipe':
            target = 'pipe:0'
        elif self.kind == 'network':
            if target.lower().startswith('rtsp'):
                options.setdefault('rtsp_transport', 'tcp')
        elif not os.path.isfile(target):
            raise VideoError(f'video {target!r}: no such file' if not os.path.exists(target)
                             else f'video {target!r}: not a file', target)
        try:
            container = av.open(target, mode='r', format=input_format, options=options,
                                timeout=timeout if self.kind == 'network' else None)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
            what = {'camera': 'camera', 'network': 'stream', 'pipe': 'standard input',
                    'file': 'video'}[self.kind]
            raise VideoError(f'{what} {self.name!r}: cannot be opened as a video ({err})',
                             self.name) from None
        if not container.streams.video:
            container.close()
            raise VideoError(f'{self.name!r}: has no video stream', self.name)
        return container

    @property
    def fps(self) -> float:
        """The source's average frame rate (0.0 when it does not say)."""
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) if rate else 0.0

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        image = frame.to_ndarray(format='rgb24')
        if not self.autorotate:
            return image
        if self._orientation is None:
            self._orientation = rotation.orientation(_displaymatrix(frame))
        return rotation.apply(image, self._orientation)

    def _put(self, item: tuple[int, np.ndarray]) -> None:
        with self._ready:
            while len(self._frames) >= self.queue_size and not self._stop:
                if self.drop:
                    self._frames.popleft()
                    self.dropped += 1
                else:
                    self._ready.wait()
            self._frames.append(item)
            self._ready.notify_all()

    def _decode(self) -> None:
        try:
            for frame in self._container.decode(self._stream):
                if self._stop:
                    break
                number = self.decoded
                self.decoded += 1
                self._put((number, self._rgb(frame)))
        except (av.FFmpegError, OSError) as err:
            error = DamagedVideoError if self.kind == 'file' else VideoError
            self._error = error(f'{self.name!r}: decoding stopped after {self.decoded} frames '
                                f'({err})', self.name, self.decoded)
        finally:
            with self._ready:
                self._done = True
                self._ready.notify_all()
            self._container.close()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Frames as they are decoded: ``(number in the source, [H, W, 3] uint8 RGB)``.

        Raises:
            VideoError: when decoding fails part way (:class:`DamagedVideoError` for a file).
        """
        while True:
            with self._ready:
                while not self._frames and not self._done:
                    self._ready.wait()
                if self._frames:
                    item = self._frames.popleft()
                    self._ready.notify_all()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield item

    def close(self) -> None:
        """Stop decoding (a thread blocked reading a live source ends with the process)."""
        with self._ready:
            self._stop = True
            self._frames.clear()
            self._ready.notify_all()
        self._thread.join(timeout=1.0)

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
