"""The errors of reading video, and the one policy for damaged files.

The policy, the same in every command and in the dataset: **a frame that is asked for and
cannot be decoded is an error, never a silent substitute.** A video is counted from its
container's packets (decord's count); reading frames raises :class:`DamagedVideoError` when
the container breaks off while it is demuxed, when an asked-for frame lies at or after a
packet the demuxer read short or flagged corrupt (a file cut inside a packet), when it (or a
frame it is decoded from) does not decode, or when the decoder marks it (or a frame it is
decoded from) corrupt. A file
cut exactly between packets is a shorter video, not a damaged one: nothing in it says so.
Callers that go on past bad videos (``on_error='skip'``) catch :class:`VideoError`, count the
video and report it.
"""

from __future__ import annotations

import os


class VideoError(ValueError):
    """A video that cannot be read: missing, not a video, no video stream, damaged, or asked
    for a frame it does not have. The message is one line naming the file.

    Attributes:
        path: the video file (None when unknown).
        frame: the frame index concerned (None when not about one frame).
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 frame: int | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.frame = frame


class DamagedVideoError(VideoError):
    """A video that opens but breaks off or does not decode where it is read (truncated or
    corrupted data)."""
