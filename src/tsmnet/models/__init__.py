"""The models: the 2D ResNet and MobileNetV2 backbones and their TSM versions (next: the head
and the recognizer).

Owns the ``nn.Module`` s and their MMAction2-compatible parameter names. It may import shift,
layers, archs, fileio and weights (to load checkpoints), never weights.conversion, stream,
export, demo or commands: those import it.
"""

from .mobilenet_v2 import MobileNetV2
from .mobilenet_v2_tsm import MobileNetV2TSM
from .resnet import ResNet
from .resnet_tsm import ResNetTSM

__all__ = ['MobileNetV2', 'MobileNetV2TSM', 'ResNet', 'ResNetTSM']
