"""tsmnet: the Temporal Shift Module backbone, drop-in compatible with MMAction2's ResNetTSM."""

from . import registry  # noqa: F401  (MMEngine registries, MMAction2 drop-in)
from .fuse import fuse_conv_bn
from .layers import NL3DWrapper, TemporalPool, TemporalShift
from .models import MobileNetV2, MobileNetV2TSM, ResNet, ResNetTSM
from .ops import temporal_shift
from .safe_globals import register_safe_globals  # noqa: F401  (on import: Runner ckpts load)
from .stream import TSMStream

__all__ = ['MobileNetV2', 'MobileNetV2TSM', 'NL3DWrapper', 'ResNet', 'ResNetTSM', 'TSMStream',
           'TemporalPool', 'TemporalShift', 'fuse_conv_bn', 'temporal_shift']
__version__ = '0.1.0'
