"""The backbones: the 2D ResNet and MobileNetV2, and their TSM versions."""

from .mobilenet_v2 import MobileNetV2
from .mobilenet_v2_tsm import MobileNetV2TSM
from .resnet import ResNet
from .resnet_tsm import ResNetTSM

__all__ = ['MobileNetV2', 'MobileNetV2TSM', 'ResNet', 'ResNetTSM']
