"""tsmnet: the Temporal Shift Module backbone, drop-in compatible with MMAction2's ResNetTSM.

``import tsmnet`` imports nothing but this file: each public name below is imported from its
module on first use (PEP 562), so ``import tsmnet.video`` (in a spawned DataLoader worker, say)
does not pay for the models, mmcv, ONNX or the exporters. It changes nothing outside tsmnet,
with one exception asked for by the context: where MMEngine is already in use (an MMAction2
config's ``custom_imports = dict(imports=['tsmnet'])``, a Runner, MMAction2's tools), it
imports :mod:`tsmnet.registry`, which registers tsmnet's models with MMEngine and MMAction2
through their public registry API and lets ``torch.load`` read Runner checkpoints
(docs/mmaction2.md#how-the-drop-in-works).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs follow; at run time, __getattr__ below
    from . import deploy, registry, shift, weights
    from .deploy.api import export
    from .deploy.x86 import quantize
    from .fuse import fuse_conv_bn
    from .layers import NL3DWrapper, TemporalPool, TemporalShift
    from .models import MobileNetV2, MobileNetV2TSM, MobileOne, MobileOneTSM, ResNet, ResNetTSM
    from .models.factory import create_model, list_models
    from .models.head import TSMHead
    from .models.recognizer import Recognizer
    from .models.saving import load, save
    from .shift import temporal_shift, temporal_shift_reference
    from .stream import TSMStream
    from .weights.zoo import get_weights

# public name -> the module that defines it (relative to tsmnet)
_LAZY: dict[str, str] = {
    'MobileNetV2': '.models', 'MobileNetV2TSM': '.models', 'MobileOne': '.models',
    'MobileOneTSM': '.models', 'ResNet': '.models',
    'ResNetTSM': '.models', 'NL3DWrapper': '.layers', 'TemporalPool': '.layers',
    'TemporalShift': '.layers', 'Recognizer': '.models.recognizer', 'TSMHead': '.models.head',
    'TSMStream': '.stream', 'create_model': '.models.factory', 'list_models': '.models.factory',
    'export': '.deploy.api', 'quantize': '.deploy.x86', 'fuse_conv_bn': '.fuse',
    'get_weights': '.weights.zoo', 'load': '.models.saving', 'save': '.models.saving',
    'temporal_shift': '.shift', 'temporal_shift_reference': '.shift',
}
_SUBMODULES = ('deploy', 'registry', 'shift', 'weights')

__all__ = ['MobileNetV2', 'MobileNetV2TSM', 'MobileOne', 'MobileOneTSM', 'NL3DWrapper',
           'Recognizer', 'ResNet', 'ResNetTSM', 'TSMHead', 'TSMStream', 'TemporalPool',
           'TemporalShift', '__version__', 'create_model', 'deploy', 'export', 'fuse_conv_bn',
           'get_weights', 'list_models', 'load', 'quantize', 'registry', 'save', 'shift',
           'temporal_shift',
           'temporal_shift_reference', 'weights']


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562), and keep the name here."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f'.{name}', __name__)
    else:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if 'mmengine.registry' in sys.modules:  # MMEngine is in use: register with it (see above)
    from . import registry  # noqa: F401
