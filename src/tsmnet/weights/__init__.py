"""Weights: loading, key mapping, conversion, safe unpickling, named weights and label lists.

Owns every way a state dict enters tsmnet. It may import shift, archs and video (a zoo
entry's test protocol), never models or commands: models import it.
"""

import sys
import types

from . import zoo
from .zoo import WeightsEntry


class _WeightsPackage(types.ModuleType):
    """``tsmnet.weights`` is this package and, called, the zoo's lookup:
    ``tsmnet.weights(name)`` is :func:`tsmnet.weights.zoo.weights` (torchvision's
    ``get_weights`` in one name), while ``tsmnet.weights.zoo`` etc. stay importable."""

    def __call__(self, name: str) -> WeightsEntry:
        return zoo.weights(name)


sys.modules[__name__].__class__ = _WeightsPackage
