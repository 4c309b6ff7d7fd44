"""Old import path of the key mappings (:mod:`tsmnet.keymap`) and of the conversion behind
``tsmnet convert`` (:mod:`tsmnet.conversion`); kept so that existing imports still work."""

from .conversion import Conversion, convert_checkpoint, save_conversion  # noqa: F401
from .keymap import *  # noqa: F401,F403
from .keymap import __all__ as _keymap_all

__all__ = [*_keymap_all, 'Conversion', 'convert_checkpoint', 'save_conversion']
