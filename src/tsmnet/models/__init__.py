"""The backbones: the 2D ResNet and its TSM version."""

from .resnet import ResNet
from .resnet_tsm import ResNetTSM

__all__ = ['ResNet', 'ResNetTSM']
