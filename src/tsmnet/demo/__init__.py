"""``tsmnet demo``: TSM learns the direction of motion where per-frame averaging cannot.

:mod:`tsmnet.demo.data` makes the clips (seeded, on the fly, nothing to download);
:mod:`tsmnet.demo.train` trains ``ResNetTSM`` with and without shifts side by side;
:mod:`tsmnet.demo.online` replays the trained model frame by frame. It may import the library
(models, stream, fileio); only ``tsmnet demo`` imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import DemoConfig  # plain data: ``tsmnet demo --help`` reads its defaults

if TYPE_CHECKING:
    from .data import CLASSES, MotionDirection
    from .train import ClipClassifier, format_table, run_demo

# the names that need torch, imported from their module on first use (PEP 562)
_LAZY = {'CLASSES': '.data', 'MotionDirection': '.data', 'ClipClassifier': '.train',
         'format_table': '.train', 'run_demo': '.train'}

__all__ = ['CLASSES', 'ClipClassifier', 'DemoConfig', 'MotionDirection', 'format_table',
           'run_demo']


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
