"""``tsmnet demo``: TSM learns the direction of motion where per-frame averaging cannot.

:mod:`tsmnet.demo.data` makes the clips (seeded, on the fly, nothing to download);
:mod:`tsmnet.demo.train` trains ``ResNetTSM`` with and without shifts side by side;
:mod:`tsmnet.demo.online` replays the trained model frame by frame. It may import the library
(models, stream, fileio); only ``tsmnet demo`` imports it.
"""

from .config import DemoConfig
from .data import CLASSES, MotionDirection
from .train import ClipClassifier, format_table, run_demo

__all__ = ['CLASSES', 'ClipClassifier', 'DemoConfig', 'MotionDirection', 'format_table',
           'run_demo']
