"""Fixtures of tests/serve: test videos, and a real uvicorn server on a loopback port running
the tiny recognizer of :mod:`tiny_serve`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_serve import tiny_predictor
from video_files import moving_frames, write_video

from tsmnet.serve import BackgroundServer, ServeConfig, create_app
from tsmnet.video import read_frames


@pytest.fixture(scope='session')
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp('serve') / 'clip.mp4',
                       moving_frames(12, 72, 96, seed=5))


@pytest.fixture(scope='session')
def video_frames(video) -> np.ndarray:
    """The decoded frames of ``video`` ``[F, H, W, 3]``: what a client streams."""
    return read_frames(video)


@pytest.fixture(scope='module')
def server():
    """A real uvicorn server on a free loopback port, with small limits."""
    app = create_app(tiny_predictor(), ServeConfig(model_name='tiny', max_streams=4,
                                                   max_upload_bytes=2**20))
    with BackgroundServer(app) as running:
        yield running
