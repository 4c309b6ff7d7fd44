"""Training data: ``VideoDataset`` over video files, and MMAction2's TSM training pipeline.

Owns turning a collection of video files (a class-folder tree, an MMAction2 annotation list,
a CSV) into ``(clip, label)`` items for a ``DataLoader``. It imports only :mod:`tsmnet.video`
(decoding, test-time transforms) besides torch and numpy, so a spawned worker imports little.
"""

from . import augment
from .augment import CropBox
from .dataset import VideoDataset
from .normalize import ClipNormalizer
from .pipelines import EvalPipeline, TrainPipeline
from .sources import DataSourceError, VideoList, from_annotations, from_csv, from_folder

__all__ = ['ClipNormalizer', 'CropBox', 'DataSourceError', 'EvalPipeline', 'TrainPipeline',
           'VideoDataset', 'VideoList', 'augment', 'from_annotations', 'from_csv', 'from_folder']
