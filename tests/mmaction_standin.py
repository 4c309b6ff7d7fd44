"""Make MMAction2 1.2.0's own models importable in the test process.

The PyPI wheel of mmaction2 1.2.0 lacks ``mmaction/models/localizers/drn``, so
``import mmaction.models`` fails. Tests that compare against MMAction2's own classes put an
empty stand-in for that package in ``sys.modules`` first. This is test-only: tsmnet itself
never imports ``mmaction.models``.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def mmaction_available() -> bool:
    return importlib.util.find_spec('mmaction') is not None


def install_drn_standin() -> None:
    """Register an empty ``mmaction.models.localizers.drn`` (with ``drn.DRN``) if it is missing."""
    name = 'mmaction.models.localizers.drn'
    if name in sys.modules:
        return
    try:
        if importlib.util.find_spec(name) is not None:
            return  # a complete MMAction2 install: nothing to stand in for
    except ModuleNotFoundError:
        pass
    package = types.ModuleType(name)
    package.__path__ = []  # a package, so that `.drn.drn` resolves
    module = types.ModuleType(f'{name}.drn')

    class DRN:  # never built by these tests
        pass

    module.DRN = DRN
    package.drn = module
    sys.modules[name] = package
    sys.modules[f'{name}.drn'] = module


def import_mmaction_models() -> types.ModuleType:
    """``import mmaction.models`` with the stand-in in place, and return it."""
    install_drn_standin()
    import mmaction.models

    return mmaction.models
