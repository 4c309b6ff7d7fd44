"""Helpers of tests/serve: a tiny causal recognizer (ResNet-18-TSM, T=4, 56 x 56, 5 classes)
with weights that give scores far from uniform, its test protocol, and the scores a stream of
it must give, computed here with :class:`tsmnet.TSMStream` alone."""

from __future__ import annotations

import numpy as np
import torch

from tsmnet import TSMStream, create_model
from tsmnet.models.recognizer import Recognizer
from tsmnet.predictor import Predictor
from tsmnet.video import TestProtocol, transforms

ENTRY = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
NUM_CLASSES = 5
LABELS = [f'action {i}' for i in range(NUM_CLASSES)]
PROTOCOL = TestProtocol(num_clips=4, resize_short=64, crop='center', crop_size=56)


def tiny_model(seed: int = 0) -> Recognizer:
    """The same random weights for the same seed: batch-norm statistics and a wide head so
    that the scores are far from uniform."""
    torch.manual_seed(seed)
    model = create_model(ENTRY, depth=18, shift_mode='causal', num_segments=4,
                         num_classes=NUM_CLASSES)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith('running_mean'):
                value.copy_(torch.randn(value.shape, generator=gen) * 0.2)
            elif key.endswith('running_var'):
                value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.75)
            elif key.startswith('cls_head.fc_cls'):
                value.copy_(torch.randn(value.shape, generator=gen) * 0.5)
    return model.eval()


def tiny_predictor(seed: int = 0) -> Predictor:
    """A predictor of its own model (a Predictor folds its model's batch norms in place)."""
    return Predictor(tiny_model(seed), PROTOCOL, LABELS)


def local_stream_scores(model: Recognizer, frames: np.ndarray) -> torch.Tensor:
    """What the server should answer for each frame of one stream, computed here alone:
    :class:`tsmnet.TSMStream` over the backbone, the head's classifier per frame, the softmax of
    the mean logits of the last ``T`` frames.

    Args:
        frames: ``[F, H, W, 3]`` uint8.

    Returns:
        ``[F, num_classes]`` probabilities.
    """
    size = PROTOCOL.crop_size
    crops = transforms.center_crop(transforms.resize_short_side(frames, PROTOCOL.resize_short),
                                   size)[0]
    inputs = transforms.normalize(crops, PROTOCOL.mean, PROTOCOL.std)  # [F, 3, S, S]
    stream = TSMStream(model.backbone)
    logits = []
    with torch.no_grad():
        for frame in inputs:
            features = stream.step(frame[None])
            logits.append(model.cls_head.fc_cls(features.mean(dim=(2, 3)))[0])
    t = model.num_segments
    return torch.stack([torch.stack(logits[max(0, i - t + 1):i + 1]).mean(0).softmax(-1)
                        for i in range(len(logits))])
