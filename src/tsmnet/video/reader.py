"""One open video file, read frame by frame number: seek to a keyframe, decode forward.

:class:`VideoReader` keeps one PyAV container open. It numbers frames from the container's
packets (:class:`~.frame_index.FrameIndex`, decord's count and order), and reads a set of
frames as decord's ``'accurate'`` mode does: for each wanted frame, seek to the keyframe at or
before it and decode forward to it, identifying frames by their timestamps. Between two wanted
frames it decodes forward without seeking when the next one is in the same group of pictures
(GOP) or a few frames on; so reading ``k`` frames costs about ``k`` part-GOPs, not the video up
to the last one. Frames are equal to the bit to decoding from the start (the decoders are
exact) and to decord's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import rotation
from .errors import DamagedVideoError, VideoError
from .frame_index import FrameIndex

try:  # an extra (tsmnet[video]): everything but reading files works without it
    import av
except ImportError:  # pragma: no cover - exercised where PyAV is not installed
    av = None

logger = logging.getLogger(__name__)

# decode forward rather than seek when the next wanted frame's keyframe is at most this many
# frames past the decoder's position (a seek flushes the decoder and its frame threads)
SEEK_AFTER = 8


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`~.decode.probe` finds out about a video.

    Args:
        num_frames: video packets in the file (decord's ``len(VideoReader)``).
        fps: average frame rate (0.0 when the container does not say).
        height: displayed frame height in pixels (after rotation metadata, when applied).
        width: displayed frame width in pixels.
        orientation: the operations that turn stored frames upright
            (:func:`.rotation.orientation`; empty when none or not applied).
        damaged_from: the first frame of a damaged part (its packet was read short or
            flagged corrupt by the demuxer: a file cut inside it); None when none was seen.
            Reading it or a later frame raises :class:`DamagedVideoError`.
    """

    num_frames: int
    fps: float
    height: int
    width: int
    orientation: rotation.Orientation = ()
    damaged_from: int | None = None


class _Unnumbered(Exception):
    """A decoded frame whose timestamp is not a packet's: count frames from the start."""


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    if av is None:
        raise VideoError("reading video files needs PyAV: pip install 'tsmnet[video]'", path)
    p = Path(path)
    if not p.exists():
        raise VideoError(f'video {str(p)!r}: no such file', path)
    if not p.is_file():
        raise VideoError(f'video {str(p)!r}: not a file', path)
    try:
        container = av.open(str(p), mode='r')
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoError(f'video {str(p)!r}: cannot be read as a video ({err})',
                         path) from None
    if not container.streams.video:
        container.close()
        raise VideoError(f'video {str(p)!r}: has no video stream', path)
    return container


def _displaymatrix(frame: av.VideoFrame) -> list[int] | None:
    for side in frame.side_data:
        if side.type.name == 'DISPLAYMATRIX':
            return np.frombuffer(bytes(memoryview(side)), dtype=np.int32).tolist()
    return None


class VideoReader:
    """Frames of one video file by number, decoding only what they need.

    Args:
        path: the video file (any container and codec FFmpeg reads).
        threads: decoding threads (0: FFmpeg's choice; frame and slice threading).
        autorotate: turn frames upright by the stream's display matrix, as ffmpeg does
            (:mod:`.rotation`); False gives the frames as stored (decord's).

    Raises:
        VideoError: when the file is missing, not a video or has no video stream;
            :class:`DamagedVideoError` when its container breaks off while demuxed.

    Example:
        >>> with VideoReader('clip.mp4') as video:
        ...     frames = video.read([0, 10, 20])  # [3, H, W, 3] uint8 RGB
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0,
                 autorotate: bool = True) -> None:
        self.path = str(path)
        self.autorotate = autorotate
        self.threads = threads
        self._container = _open(path)
        try:
            self._stream = self._container.streams.video[0]
            self.index = self._build_index()
            self._stream.thread_type = 'AUTO'
            self._stream.codec_context.thread_count = threads
        except BaseException:
            self._container.close()
            raise
        self._at_start = False  # decoding from the file's first byte, not from a seek
        self._seeks_work = True  # False once a seek gave no frame (decode from the start)
        self._frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._position = -1  # the last frame the decoder gave
        self._corrupt: int | None = None  # a corrupt frame since the last keyframe decoded
        self._keyframes = set(self.index.keyframes.tolist())
        self.decoded_frames = 0  # frames decoded so far (what reading cost)
        self._wanted: set[int] | None = None  # frames looked for by number
        self._skipping = False  # the decoder drops non-reference frames
        self._orientation: rotation.Orientation | None = None

    def _build_index(self) -> FrameIndex:
        try:
            index = FrameIndex.from_packets(
                (packet.pts, packet.is_keyframe, packet.is_corrupt)
                for packet in self._container.demux(self._stream) if packet.size > 0)
        except (av.FFmpegError, OSError) as err:
            raise DamagedVideoError(f'video {self.path!r}: is damaged ({err})',
                                    self.path) from None
        if len(index) == 0:
            raise VideoError(f'video {self.path!r}: holds no frames', self.path)
        return index

    def __len__(self) -> int:
        return len(self.index)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (and the decoder's threads)."""
        self._frames = None
        self._container.close()

    @property
    def info(self) -> VideoInfo:
        """Frame count, rate and the displayed size (decodes the first keyframe for the
        display matrix when no frame has been read yet and ``autorotate`` is on)."""
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate
        height, width = stream.codec_context.height, stream.codec_context.width
        if height <= 0 or width <= 0:
            raise VideoError(f'video {self.path!r}: holds no frames', self.path)
        ops = self.orientation
        if rotation.swaps_sides(ops):
            height, width = width, height
        return VideoInfo(len(self), float(rate) if rate else 0.0, height, width, ops,
                         self.index.damaged_from)

    @property
    def orientation(self) -> rotation.Orientation:
        """The operations that turn stored frames upright (empty without ``autorotate``)."""
        if not self.autorotate:
            return ()
        if self._orientation is None:  # every frame carries the matrix: the first keyframe's
            first = self.index.keyframes[0] if len(self.index.keyframes) else 0
            self.read([int(first)])
        return self._orientation or ()

    def read(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Decode frames ``indices`` (all when None) as RGB.

        Grey, RGBA and any other pixel format become RGB (alpha dropped).

        Args:
            indices: frame numbers in display order, any order, repeats allowed.

        Returns:
            ``[len(indices), H, W, 3]`` uint8 RGB frames in the order of ``indices`` (H, W the
            displayed size).

        Raises:
            VideoError: for an index past the last frame; :class:`DamagedVideoError` when a
                wanted frame cannot be decoded (the policy in :mod:`.errors`).
        """
        if indices is None:
            wanted = np.arange(len(self), dtype=np.int64)
        else:
            wanted = np.asarray(indices).reshape(-1)
            if wanted.size == 0 or not np.issubdtype(wanted.dtype, np.integer) \
                    or wanted.min() < 0:
                raise VideoError('frame indices must be non-negative integers and not empty, '
                                 f'got {indices!r}', self.path)
            wanted = wanted.astype(np.int64)
        last = int(wanted.max())
        if last >= len(self):
            raise VideoError(f'video {self.path!r}: frame {last} was asked for but only '
                             f'{len(self)} frames are in the video', self.path, last)
        unique = np.unique(wanted)
        damaged_from = self.index.damaged_from
        if damaged_from is not None and last >= damaged_from:
            first = int(unique[np.searchsorted(unique, damaged_from)])
            raise DamagedVideoError(
                f'video {self.path!r}: frame {first} of {len(self)} cannot be decoded (the '
                f'file is damaged from frame {damaged_from}: a packet read short or corrupt)',
                self.path, first)
        try:
            frames = self._read_seeking(unique) if self.index.seekable else None
        except _Unnumbered:
            frames = None
        if frames is None:
            logger.debug('%s: frame timestamps do not match its packets: decoding from the '
                         'start', self.path)
            frames = self._read_from_start(unique)
        return np.stack([frames[i] for i in wanted.tolist()])

    # -- decoding -------------------------------------------------------------------------------

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        if self._orientation is None:
            self._orientation = rotation.orientation(_displaymatrix(frame)) \
                if self.autorotate else ()
        image = frame.to_ndarray(format='rgb24')
        return rotation.apply(image, self._orientation)

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Frames from the decoder's position on (demux, decode; the decoder flushed at the
        end of the file).

        While frames are looked for by number (``self._wanted``), a packet of a frame nobody
        wants is decoded with ``skip_frame='NONREF'``: when no other frame refers to it (a
        B-frame in most GOPs) the decoder drops it unseen; reference frames decode as ever, so
        the wanted ones are unchanged.
        """
        codec = self._stream.codec_context
        for packet in self._container.demux(self._stream):
            if packet.size > 0:
                skip = self._wanted is not None and \
                    self.index.frame_of(packet.pts) not in self._wanted
                if skip != self._skipping:
                    codec.skip_frame = 'NONREF' if skip else 'DEFAULT'
                    self._skipping = skip
            for frame in packet.decode():
                self.decoded_frames += 1
                yield frame

    def _numbered(self) -> Iterator[tuple[int, av.VideoFrame]]:
        for frame in self._decoded():
            number = self.index.frame_of(frame.pts)
            if number is None:
                raise _Unnumbered
            yield number, frame

    def _seek(self, keyframe: int) -> None:
        self._container.seek(int(self.index.pts[keyframe]), stream=self._stream,
                             backward=True, any_frame=False)
        self._stream.codec_context.flush_buffers()  # no frame from before the seek
        self._frames = self._numbered()
        self._position = -1
        self._corrupt = None
        self._at_start = False

    def _restart(self) -> None:
        """Decode from the file's first byte with a fresh demuxer and decoder: for streams
        whose decoder needs what precedes a keyframe (parameter sets sent once, at the start:
        MPEG-TS), or whose seeks land past the first keyframe."""
        self._container.close()
        self._container = _open(self.path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = 'AUTO'
        self._stream.codec_context.thread_count = self.threads
        self._skipping = False
        self._frames = self._numbered()
        self._position, self._corrupt, self._at_start = -1, None, True

    def _damaged(self, frame: int, err: Exception | None) -> DamagedVideoError:
        why = f'({err})' if err is not None else \
            f'(the decoder stopped after frame {self._position})' if self._position >= 0 else \
            '(no frame before it decodes)'
        return DamagedVideoError(f'video {self.path!r}: frame {frame} of {len(self)} cannot '
                                 f'be decoded {why}', self.path, frame)

    def _read_seeking(self, unique: np.ndarray) -> dict[int, np.ndarray]:
        """Each wanted frame (ascending, distinct): seek to its keyframe unless decoding
        forward from where the decoder is gets there as soon."""
        wanted = set(unique.tolist())
        if wanted != self._wanted:
            # packets already sent to the decoder were skipped or not for the old frames
            self._frames = None
        self._wanted = wanted
        got: dict[int, np.ndarray] = {}
        for target in unique.tolist():
            if target in got:
                continue
            keyframe = self.index.keyframe_before(target)
            if keyframe is None:  # no keyframe before it: from the first frame
                keyframe = 0
            ahead = self._frames is not None and self._position < target \
                and keyframe - self._position <= SEEK_AFTER
            if not ahead:
                if self._seeks_work:
                    self._seek(keyframe)
                elif self._frames is None or self._position >= target:
                    self._restart()
            while target not in got:
                try:
                    number, frame = next(self._frames)
                except StopIteration:
                    self._frames = None
                    if self._position < 0 and not self._at_start:
                        self._seeks_work = False  # nothing decoded after the seek
                        self._restart()
                        continue
                    raise self._damaged(target, None) from None
                except (av.FFmpegError, OSError) as err:
                    self._frames = None
                    raise self._damaged(target, err) from None
                if self._position < 0 and number > target:
                    if self._at_start:  # the frames before the first that decodes do not
                        raise self._damaged(target, None)
                    # the seek landed past the keyframe: from an earlier one, or the start
                    if keyframe > 0:
                        keyframe = self.index.keyframe_before(keyframe - 1) or 0
                        self._seek(keyframe)
                    else:
                        self._restart()
                    continue
                self._position = number
                # the decoder has what the start held (parameter sets): seeks may work now
                self._seeks_work = True
                self._passed(frame, number)
                if number in wanted and number not in got:
                    got[number] = self._checked(frame, number)
                if number > target:
                    raise _Unnumbered  # decoded past it: it has no frame of its own
        return got

    def _passed(self, frame: av.VideoFrame, number: int) -> None:
        """Note a decoded frame: a corrupt one taints the frames after it until a keyframe."""
        if number in self._keyframes or frame.key_frame:
            self._corrupt = None
        if frame.is_corrupt and self._corrupt is None:
            self._corrupt = number

    def _checked(self, frame: av.VideoFrame, number: int) -> np.ndarray:
        """A wanted frame as RGB, refused when it or a frame it may be decoded from is
        corrupt (the decoder concealed errors in it)."""
        if self._corrupt is not None:
            which = 'decodes corrupt' if self._corrupt == number else \
                f'is decoded from corrupt frame {self._corrupt}'
            raise DamagedVideoError(f'video {self.path!r}: frame {number} of {len(self)} '
                                    f'{which}', self.path, number)
        return self._rgb(frame)

    def _read_from_start(self, unique: np.ndarray) -> dict[int, np.ndarray]:
        """The fallback: decode from the first frame, counting frames as they come."""
        wanted, last = set(unique.tolist()), int(unique[-1])
        got: dict[int, np.ndarray] = {}
        self._wanted = None  # frames are counted: every one must come out
        self._restart()
        self._frames = None
        number = -1
        try:
            for number, frame in enumerate(self._decoded()):
                self._passed(frame, number)
                if number in wanted:
                    got[number] = self._checked(frame, number)
                if number >= last:
                    break
        except (av.FFmpegError, OSError) as err:
            missing = min(wanted - got.keys())
            raise self._damaged(missing, err) from None
        missing = sorted(wanted - got.keys())
        if missing:
            self._position = number
            raise self._damaged(missing[0], None)
        return got
