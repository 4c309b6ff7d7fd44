"""Old import path of :mod:`tsmnet.models.resnet` (kept so imports and pickles still resolve)."""

from .models.resnet import *  # noqa: F401,F403
from .models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: F401
