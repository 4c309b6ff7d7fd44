"""Reading video for the recognizer: decoding, MMAction2's test-time sampling and transforms.

Owns turning a video file (or decoded frames) into the normalised views a recognizer takes.
It may import torch, numpy and a decoding library; it imports nothing else of tsmnet's, so
the weights zoo, ``tsmnet predict``, ``tsmnet finetune`` and export can all use it.
"""

from .protocol import TestProtocol

__all__ = ['TestProtocol']
