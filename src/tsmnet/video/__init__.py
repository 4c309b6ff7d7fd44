"""Reading video for the recognizer: decoding, MMAction2's test-time sampling and transforms.

Owns turning a video file (or decoded frames, or a live source) into the normalised views a
recognizer takes, and scoring many files with any model callable. It may import torch, numpy
and a decoding library (PyAV); it imports nothing else of tsmnet's, so the weights zoo,
``tsmnet predict``, ``tsmnet stream``, ``tsmnet finetune`` and export can all use it.
"""

from .batch import VideoFiles, VideoResult, predict_videos
from .decode import probe, read_frames
from .errors import DamagedVideoError, VideoError
from .files import VIDEO_EXTENSIONS, find_videos
from .frame_transform import FrameTransform, single_view_protocol
from .live import FrameSource, source_kind
from .pipeline import VideoTransform, load_video, read_sampled
from .protocol import TestProtocol
from .reader import VideoInfo, VideoReader
from .results import ResultWriter
from .sampling import dense_sample_frames, sample_frames

__all__ = ['VIDEO_EXTENSIONS', 'DamagedVideoError', 'FrameSource', 'FrameTransform',
           'ResultWriter', 'TestProtocol', 'VideoError', 'VideoFiles', 'VideoInfo',
           'VideoReader', 'VideoResult', 'VideoTransform', 'dense_sample_frames', 'find_videos',
           'load_video', 'predict_videos', 'probe', 'read_frames', 'read_sampled',
           'sample_frames', 'single_view_protocol', 'source_kind']
