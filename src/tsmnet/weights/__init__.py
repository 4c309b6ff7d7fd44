"""Weights: loading, key mapping, conversion, safe unpickling, named weights and label lists.

Owns every way a state dict enters tsmnet: :mod:`~tsmnet.weights.checkpoint` (safe, strict
loading), :mod:`~tsmnet.weights.keymap` (pure key mapping of other layouts; imports only archs),
:mod:`~tsmnet.weights.safe_globals` (the unpickling allow-list),
:mod:`~tsmnet.weights.conversion` (what ``tsmnet convert`` does), :mod:`~tsmnet.weights.zoo`
(the named weights) and :mod:`~tsmnet.weights.download`. It may import shift, archs,
fileio and video (a zoo entry's test protocol), never models, stream, export or commands: models
import it. The one exception is ``conversion``, which checks a converted file against the model
it is for, so it sits above models and nothing below the commands imports it.

A plain package: a named entry is ``tsmnet.get_weights(name)`` (torchvision's ``get_weight``
convention). Calling the package, ``tsmnet.weights(name)`` as before, raises
``TypeError: 'module' object is not callable`` (a module can be called only by replacing its
class, which IDEs, type checkers and ``help()`` cannot follow; docs/zoo.md).
"""

from .zoo import WeightsEntry, get_weights

__all__ = ['WeightsEntry', 'get_weights']
