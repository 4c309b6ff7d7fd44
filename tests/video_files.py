"""Videos the tests write themselves (PyAV): smooth moving patterns that survive compression."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def moving_frames(num_frames: int, height: int, width: int, seed: int = 0,
                  channels: int = 3) -> np.ndarray:
    """``[F, H, W, C]`` uint8: a smooth random texture drifting right and down, frame to frame."""
    rng = np.random.default_rng(seed)
    h2, w2 = height + num_frames * 2, width + num_frames * 3
    coarse = rng.uniform(0, 255, (h2 // 8 + 2, w2 // 8 + 2, channels))
    texture = np.kron(coarse, np.ones((8, 8, 1)))[:h2, :w2]
    frames = [texture[2 * i:2 * i + height, 3 * i:3 * i + width] for i in range(num_frames)]
    return np.stack(frames).round().clip(0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, codec: str = 'libx264',
                pix_fmt: str = 'yuv420p', rate: int = 25, source_format: str = 'rgb24',
                options: dict[str, str] | None = None) -> Path:
    """Encode ``frames`` (``[F, H, W, C]`` uint8, laid out as ``source_format``) to ``path``."""
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.options = options or {}
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=source_format)
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
