"""Running MMAction2 1.2.0's own code from its PyPI wheel: the stand-in and the tools.

The PyPI wheel (and sdist) of mmaction2 1.2.0 lacks ``mmaction/models/localizers/drn/``, so
``import mmaction.models`` raises ``ModuleNotFoundError``, and so does every build through
MMAction2's ``MODELS`` registry (its lazy import of ``mmaction.models``), and with them
MMAction2's own ``tools/train.py`` and ``tools/test.py``. :func:`install_drn_standin` puts an
empty package of that name in ``sys.modules``, only where the installed MMAction2 lacks it (a
complete install is left alone); nothing of tsmnet's own needs it. The MMAction2 drop-in
(:mod:`tsmnet.registry`) applies it, so that MMAction2's registry can import its models
before tsmnet registers its classes; a bare ``import tsmnet`` does not.

:func:`run_mmaction_tool` runs the ``tools/train.py`` or ``tools/test.py`` that ship in the
wheel (``mmaction/.mim/tools``) in this process, with tsmnet imported (so ``type='ResNetTSM'``,
``runner_type='tsmnet.Runner'`` and the checkpoint allow-list of :mod:`tsmnet.weights.safe_globals`
work) and the stand-in applied: this is ``tsmnet train`` and ``tsmnet test``.

This module imports nothing of tsmnet, so that a test of import orders can load it by its
file path and apply the stand-in before tsmnet is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import runpy
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from mmengine.logging import print_log

__all__ = ['DRN_MODULE', 'import_mmaction_models', 'install_drn_standin', 'mmaction_available',
           'mmaction_tool', 'run_mmaction_tool']

DRN_MODULE = 'mmaction.models.localizers.drn'
Tool = Literal['train', 'test']


def mmaction_available() -> bool:
    """Whether the ``mmaction`` package (MMAction2) is installed."""
    return importlib.util.find_spec('mmaction') is not None


class _DRNStandIn:
    """Stands in for MMAction2's DRN localizer class, which the wheel lacks; never built."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError(f'{DRN_MODULE} is a stand-in made by tsmnet: the PyPI wheel of '
                           f'mmaction2 1.2.0 lacks it, so its DRN localizer cannot be built')


def _has_drn() -> bool:
    """Whether the installed MMAction2 has the module, looked up without importing
    ``mmaction.models`` (whose ``__init__`` is what fails on the wheel)."""
    spec = importlib.util.find_spec('mmaction')
    if spec is None or spec.submodule_search_locations is None:
        return False  # no MMAction2: standing in is harmless
    return any((Path(p) / 'models' / 'localizers' / 'drn').is_dir()
               for p in spec.submodule_search_locations)


def install_drn_standin() -> bool:
    """Register an empty ``mmaction.models.localizers.drn`` (with ``drn.DRN``) if it is missing.

    Returns:
        True if the stand-in was installed now, False if the module exists (a complete
        MMAction2, or the stand-in already in place).
    """
    if DRN_MODULE in sys.modules or _has_drn():
        return False
    package = types.ModuleType(DRN_MODULE)
    package.__path__ = []  # a package, so that `.drn.drn` resolves
    module = types.ModuleType(f'{DRN_MODULE}.drn')
    module.DRN = _DRNStandIn
    package.drn = module
    sys.modules[DRN_MODULE] = package
    sys.modules[f'{DRN_MODULE}.drn'] = module
    print_log(f'tsmnet: the installed mmaction2 lacks {DRN_MODULE}; an empty stand-in lets '
              f'mmaction.models import', logger='current', level=logging.DEBUG)
    return True


def import_mmaction_models() -> types.ModuleType:
    """``import mmaction.models`` with the stand-in in place where needed, and return it.

    Raises:
        ModuleNotFoundError: MMAction2 is not installed.
    """
    install_drn_standin()
    return importlib.import_module('mmaction.models')


def mmaction_tool(name: Tool) -> Path:
    """The path of MMAction2's ``tools/{name}.py`` in the installed wheel.

    Raises:
        ValueError: ``name`` is not ``'train'`` or ``'test'``.
        FileNotFoundError: MMAction2 is not installed, or its wheel has no such script.
    """
    if name not in ('train', 'test'):
        raise ValueError(f"name must be 'train' or 'test', got {name!r}")
    spec = importlib.util.find_spec('mmaction')
    if spec is None or spec.origin is None:
        raise FileNotFoundError('MMAction2 is not installed; install it with '
                                "pip install 'tsmnet[mmaction]'")
    script = Path(spec.origin).parent / '.mim' / 'tools' / f'{name}.py'
    if not script.is_file():
        raise FileNotFoundError(f'the installed MMAction2 has no {script}')
    return script


def run_mmaction_tool(name: Tool, argv: Sequence[str]) -> None:
    """Run MMAction2's ``tools/{name}.py`` with ``argv`` in this process, as ``__main__``.

    tsmnet is imported (it is, since this module is part of it) and the stand-in applied
    first. ``sys.argv`` and ``sys.path`` are restored afterwards.

    Args:
        name: ``'train'`` or ``'test'``.
        argv: The script's arguments (``CONFIG [CHECKPOINT] [options...]``).

    Raises:
        FileNotFoundError: See :func:`mmaction_tool`.
        SystemExit: The script's own exits (its argument errors, ``--help``).
    """
    script = mmaction_tool(name)
    install_drn_standin()
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(script), *argv]  # runpy names the script argv[0] in any case
    sys.path.insert(0, str(script.parent))  # as `python tools/train.py` would have it
    try:
        runpy.run_path(str(script), run_name='__main__')
    finally:
        sys.argv[:] = saved_argv
        sys.path[:] = saved_path
