"""Weights: loading, key mapping, conversion, safe unpickling, named weights and label lists.

Owns every way a state dict enters tsmnet: :mod:`~tsmnet.weights.checkpoint` (safe, strict
loading), :mod:`~tsmnet.weights.keymap` (pure key mapping of other layouts; imports only archs),
:mod:`~tsmnet.weights.safe_globals` (the unpickling allow-list) and
:mod:`~tsmnet.weights.conversion` (what ``tsmnet convert`` does). It may import shift, archs,
fileio and video (a zoo entry's test protocol), never models, stream, export or commands: models
import it. The one exception is ``conversion``, which checks a converted file against the model
it is for, so it sits above models and nothing below the commands imports it.
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
