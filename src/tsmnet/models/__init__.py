"""The models: the 2D ResNet, MobileNetV2 and MobileOne backbones and their TSM versions, the head
(:mod:`~tsmnet.models.head`), the recognizer (:mod:`~tsmnet.models.recognizer`) and
``create_model`` / ``list_models`` (:mod:`~tsmnet.models.factory`).

Owns the ``nn.Module`` s and their MMAction2-compatible parameter names. It may import shift,
layers, archs, fileio and weights (to load checkpoints), never weights.conversion, stream,
export, demo or commands: those import it.
"""

from .mobilenet_v2 import MobileNetV2
from .mobilenet_v2_tsm import MobileNetV2TSM
from .mobileone import MobileOne
from .mobileone_tsm import MobileOneTSM
from .resnet import ResNet
from .resnet_tsm import ResNetTSM

__all__ = ['MobileNetV2', 'MobileNetV2TSM', 'MobileOne', 'MobileOneTSM', 'ResNet', 'ResNetTSM']
