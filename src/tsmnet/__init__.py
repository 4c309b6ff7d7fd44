"""tsmnet: the Temporal Shift Module backbone, drop-in compatible with MMAction2's ResNetTSM."""

# MMEngine registries; the shift op family; the weights package (also callable:
# tsmnet.weights(name)); the deploy package, whose function is tsmnet.export(model, path, ...)
from . import deploy, registry, shift, weights  # noqa: F401
from ._version import __version__  # noqa: F401
from .deploy.api import export
from .deploy.x86 import quantize
from .fuse import fuse_conv_bn
from .layers import NL3DWrapper, TemporalPool, TemporalShift
from .models import MobileNetV2, MobileNetV2TSM, ResNet, ResNetTSM
from .models.factory import create_model, list_models
from .models.head import TSMHead
from .models.recognizer import Recognizer
from .shift import temporal_shift, temporal_shift_reference
from .stream import TSMStream
from .weights.safe_globals import register_safe_globals  # noqa: F401  (on import: Runner ckpts load)

__all__ = ['MobileNetV2', 'MobileNetV2TSM', 'NL3DWrapper', 'Recognizer', 'ResNet', 'ResNetTSM',
           'TSMHead', 'TSMStream', 'TemporalPool', 'TemporalShift', 'create_model', 'deploy',
           'export', 'fuse_conv_bn', 'list_models', 'quantize', 'shift', 'temporal_shift',
           'temporal_shift_reference', 'weights']
