"""Reading video for the recognizer: decoding, MMAction2's test-time sampling and transforms.

Owns turning a video file (or decoded frames) into the normalised views a recognizer takes.
It may import torch, numpy and a decoding library (PyAV); it imports nothing else of
tsmnet's, so the weights zoo, ``tsmnet predict``, ``tsmnet finetune`` and export can all use it.
"""

from .decode import probe, read_frames
from .errors import DamagedVideoError, VideoError
from .pipeline import VideoTransform, load_video, read_sampled
from .protocol import TestProtocol
from .reader import VideoInfo, VideoReader
from .sampling import dense_sample_frames, sample_frames

__all__ = ['DamagedVideoError', 'TestProtocol', 'VideoError', 'VideoInfo', 'VideoReader',
           'VideoTransform', 'dense_sample_frames', 'load_video', 'probe', 'read_frames',
           'read_sampled', 'sample_frames']
