"""Old import path of :mod:`tsmnet.models.resnet_tsm`, kept so imports and pickles resolve."""

from .models.resnet_tsm import *  # noqa: F401,F403
from .models.resnet_tsm import ResNetTSM  # noqa: F401
