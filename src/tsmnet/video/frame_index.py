"""Which packet is which frame: a video's frames in presentation order, from its packets.

Demuxing reads packets without decoding them (cheap), as decord does to build its frame
index: frame ``i`` is the packet with the ``i``-th smallest presentation timestamp (pts), so
frames are numbered in display order whatever the decode order (B-frames), and the keyframes
say where decoding can start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FrameIndex:
    """The frames of one video stream.

    Args:
        pts: ``[F]`` int64 presentation timestamps (stream time base), ascending; frame ``i``
            has ``pts[i]``.
        keyframes: ``[K]`` int64 frame numbers of the keyframes, ascending.
        seekable: whether frames can be found by timestamp (every packet has a pts and no two
            share one); otherwise frames are counted from the first one decoded.
        damaged_from: the first frame whose packet the demuxer flagged corrupt (read short:
            the file is cut inside it), None when none is.
    """

    pts: np.ndarray
    keyframes: np.ndarray
    seekable: bool
    damaged_from: int | None = None
    _frame_of: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_packets(cls, packets: Iterable[tuple[int | None, bool, bool]]) -> FrameIndex:
        """Build the index from ``(pts, is_keyframe, is_corrupt)`` of each non-empty video
        packet, in file order."""
        pts_list, key_pts, bad_pts, missing = [], [], [], False
        for pts, is_keyframe, is_corrupt in packets:
            if pts is None:
                missing = True
                pts_list.append(len(pts_list))
                continue
            pts_list.append(pts)
            if is_keyframe:
                key_pts.append(pts)
            if is_corrupt:
                bad_pts.append(pts)
        pts = np.sort(np.asarray(pts_list, dtype=np.int64))
        seekable = not missing and bool(np.all(np.diff(pts) > 0))
        frame_of = {int(p): i for i, p in enumerate(pts.tolist())} if seekable else {}
        keyframes = np.asarray(sorted(frame_of[p] for p in key_pts), dtype=np.int64) \
            if seekable else np.zeros(0, dtype=np.int64)
        damaged = [frame_of[p] for p in bad_pts] if seekable else \
            ([len(pts) - 1] if bad_pts else [])  # without timestamps: the last, conservatively
        return cls(pts, keyframes, seekable, min(damaged) if damaged else None, frame_of)

    def __len__(self) -> int:
        return len(self.pts)

    def frame_of(self, pts: int | None) -> int | None:
        """The frame number of a decoded frame's pts (None when it is not a packet's)."""
        return None if pts is None else self._frame_of.get(pts)

    def keyframe_before(self, frame: int) -> int | None:
        """The last keyframe at or before ``frame`` (None when none is)."""
        at = int(np.searchsorted(self.keyframes, frame, side='right')) - 1
        return int(self.keyframes[at]) if at >= 0 else None
