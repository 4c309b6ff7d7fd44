"""The MMAction2 stand-in of :mod:`tsmnet.mmaction_compat`, loaded by file path so that a test
can apply it before ``import tsmnet`` (import-order tests)."""

from __future__ import annotations

import importlib.util
import types


def load_compat_without_tsmnet() -> types.ModuleType:
    """``tsmnet/mmaction_compat.py`` as a standalone module; ``tsmnet`` stays unimported."""
    package = importlib.util.find_spec('tsmnet')
    path = next(iter(package.submodule_search_locations)) + '/mmaction_compat.py'
    spec = importlib.util.spec_from_file_location('_tsmnet_mmaction_compat', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
