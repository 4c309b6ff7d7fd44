"""tsmnet: the Temporal Shift Module backbone, drop-in compatible with MMAction2's ResNetTSM."""

from . import registry, shift  # noqa: F401  (MMEngine registries; the shift op family)
from ._version import __version__  # noqa: F401
from .export.api import export  # noqa: E402  (the function; the package is tsmnet.export.*)
from .fuse import fuse_conv_bn
from .layers import NL3DWrapper, TemporalPool, TemporalShift
from .models import MobileNetV2, MobileNetV2TSM, ResNet, ResNetTSM
from .safe_globals import register_safe_globals  # noqa: F401  (on import: Runner ckpts load)
from .shift import temporal_shift, temporal_shift_reference
from .stream import TSMStream

__all__ = ['MobileNetV2', 'MobileNetV2TSM', 'NL3DWrapper', 'ResNet', 'ResNetTSM', 'TSMStream',
           'TemporalPool', 'TemporalShift', 'export', 'fuse_conv_bn', 'shift', 'temporal_shift',
           'temporal_shift_reference']
