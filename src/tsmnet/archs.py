"""The one table of backbone architectures that the models, the key mapping and the commands read.

A plain data module: it imports nothing heavy, so the key mapping (which must not import the
models) and the command line (which builds its parsers before importing torch) can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BlockType = Literal['basic', 'bottleneck']


@dataclass(frozen=True)
class ResNetArch:
    """One ResNet depth (Deep Residual Learning, https://arxiv.org/abs/1512.03385).

    Attributes:
        block: ``'basic'`` (two 3x3 convs) or ``'bottleneck'`` (1x1, 3x3, 1x1 convs).
        stage_blocks: Blocks in each of the four stages (``layer1`` ... ``layer4``).
        expansion: Output channels of a block / its ``planes`` (1 for basic, 4 for bottleneck).
    """

    block: BlockType
    stage_blocks: tuple[int, int, int, int]

    @property
    def expansion(self) -> int:
        return 1 if self.block == 'basic' else 4


RESNET_ARCHS: dict[int, ResNetArch] = {
    18: ResNetArch('basic', (2, 2, 2, 2)),
    34: ResNetArch('basic', (3, 4, 6, 3)),
    50: ResNetArch('bottleneck', (3, 4, 6, 3)),
    101: ResNetArch('bottleneck', (3, 4, 23, 3)),
    152: ResNetArch('bottleneck', (3, 8, 36, 3)),
}
RESNET_DEPTHS: tuple[int, ...] = tuple(sorted(RESNET_ARCHS))
STEM_CHANNELS = 64  # output channels of the stem conv; stage i has 64 * 2**i planes


def resnet_arch(depth: int) -> ResNetArch:
    """The architecture of a ResNet depth.

    Raises:
        ValueError: ``depth`` is not one of :data:`RESNET_DEPTHS`.
    """
    if depth not in RESNET_ARCHS:
        raise ValueError(f'depth must be one of {list(RESNET_DEPTHS)}, got {depth!r}')
    return RESNET_ARCHS[depth]


def depth_of(block: BlockType, stage_blocks: tuple[int, ...]) -> int | None:
    """The depth whose block type and first ``len(stage_blocks)`` stage sizes match, if any.

    Args:
        block: ``'basic'`` or ``'bottleneck'``.
        stage_blocks: Blocks per stage, from ``layer1`` on (fewer than four when a model was
            built with ``num_stages < 4``).
    """
    for depth in RESNET_DEPTHS:
        arch = RESNET_ARCHS[depth]
        if stage_blocks and arch.block == block and \
                arch.stage_blocks[:len(stage_blocks)] == tuple(stage_blocks):
            return depth
    return None


#: MobileNetV2's inverted-residual stages (``layer1`` ... ``layer7``), as
#: ``(expand_ratio, channels, blocks, stride)`` (MobileNetV2, https://arxiv.org/abs/1801.04381).
MOBILENET_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
    (6, 160, 3, 2), (6, 320, 1, 1))
