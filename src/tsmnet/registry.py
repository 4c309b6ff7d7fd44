"""tsmnet's MMEngine registries and the MMAction2 drop-in.

``import tsmnet`` (which imports this module) does two things:

1. tsmnet's own registries, scope ``'tsmnet'``, children of MMEngine's root registries: so
   ``dict(type='tsmnet.ResNetTSM', ...)`` builds from any scope, with or without MMAction2.
2. Where MMAction2 is installed, ``ResNetTSM``, ``MobileNetV2TSM`` and ``MobileOneTSM``
   (``DROP_IN_NAMES``) in MMAction2's ``MODELS`` registry are tsmnet's classes, so an
   unchanged MMAction2 config with
   ``custom_imports = dict(imports=['tsmnet'], allow_failed_imports=False)`` builds it.

MMAction2 registers its own ``ResNetTSM`` when ``mmaction.models`` is imported, which happens
lazily on the first build through its registry, or whenever the user imports it. If tsmnet
came first, that plain (not forced) registration would raise ``KeyError`` ("already
registered"), and a forced one would replace tsmnet's class. So tsmnet registers with
``force=True`` and wraps that one registry's ``_register_module`` to set aside any later
unforced registration of the name ``ResNetTSM`` by another class: whichever of ``tsmnet`` and
``mmaction.models`` is imported first, ``ResNetTSM`` is tsmnet's, no ``KeyError``, and every
other MMAction2 model registers as usual. A deliberate ``force=True`` registration by the
user still wins.

This module imports ``mmaction.registry`` only (registries, no models): importing tsmnet
never imports ``mmaction.models``, which fails on the PyPI wheel of mmaction2 1.2.0.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from typing import Any

from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry

from .models import MobileNetV2, MobileNetV2TSM, MobileOne, MobileOneTSM, ResNet, ResNetTSM

__all__ = ['DROP_IN_NAMES', 'MMACTION_DROP_IN', 'MODELS', 'MODEL_WRAPPERS', 'RUNNERS',
           'install_mmaction_drop_in']

#: Backbones (``type='tsmnet.ResNetTSM'``, ``'tsmnet.ResNet'``, ``'tsmnet.MobileNetV2TSM'``,
#: ``'tsmnet.MobileNetV2'``).
MODELS = Registry('model', parent=MMENGINE_MODELS, scope='tsmnet', locations=['tsmnet'])
#: The CPU-capable DDP wrapper (``tsmnet.engine``), imported on first use.
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='tsmnet',
                          locations=['tsmnet.engine'])
#: ``runner_type='tsmnet.Runner'`` (``tsmnet.engine``), imported on first use.
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='tsmnet',
                   locations=['tsmnet.engine'])

MODELS.register_module(module=ResNet)
MODELS.register_module(module=ResNetTSM)
MODELS.register_module(module=MobileNetV2)
MODELS.register_module(module=MobileNetV2TSM)
MODELS.register_module(module=MobileOne)
MODELS.register_module(module=MobileOneTSM)

#: Names in MMAction2's ``MODELS`` registry that resolve to tsmnet's classes.
DROP_IN_NAMES: dict[str, type] = {'ResNetTSM': ResNetTSM, 'MobileNetV2TSM': MobileNetV2TSM,
                                   'MobileOneTSM': MobileOneTSM}

_GUARD_ATTR = '_tsmnet_drop_in'


def _guard_registrations(registry: Registry, names: dict[str, type]) -> None:
    """Make unforced registrations of ``names`` by other classes keep tsmnet's classes.

    Args:
        registry: MMAction2's ``MODELS`` registry.
        names: Registry name -> tsmnet class that must stay registered under it.
    """
    if getattr(registry, _GUARD_ATTR, None) is not None:
        getattr(registry, _GUARD_ATTR).update(names)
        return
    guarded = dict(names)
    register = registry._register_module  # bound method of this one registry instance

    def _register_module(module: Any, module_name: str | Sequence[str] | None = None,
                         force: bool = False) -> None:
        if force:
            return register(module=module, module_name=module_name, force=force)
        if module_name is None:
            requested = [getattr(module, '__name__', None)]
        elif isinstance(module_name, str):
            requested = [module_name]
        else:
            requested = list(module_name)
        kept = [n for n in requested if n in guarded and guarded[n] is not module]
        for name in kept:
            print_log(f'tsmnet: keeping tsmnet.{guarded[name].__name__} as {name!r} in '
                      f'{registry.scope}\'s {registry.name} registry instead of '
                      f'{getattr(module, "__module__", "?")}.{name}',
                      logger='current', level=logging.DEBUG)
        rest = [n for n in requested if n not in kept]
        if rest:
            register(module=module, module_name=rest, force=False)

    registry._register_module = _register_module  # type: ignore[method-assign]
    setattr(registry, _GUARD_ATTR, guarded)


def install_mmaction_drop_in() -> bool:
    """Make ``ResNetTSM`` in MMAction2's ``MODELS`` registry build tsmnet's class.

    Called by ``import tsmnet``; safe to call again. Imports ``mmaction.registry`` only.

    Returns:
        True if MMAction2 is installed and the drop-in is in place, False otherwise.
    """
    if importlib.util.find_spec('mmaction') is None:
        return False
    try:
        from mmaction.registry import MODELS as MMACTION_MODELS
    except (ImportError, AssertionError) as err:  # a broken install must not break tsmnet
        # (mmaction/__init__.py asserts its mmcv/mmengine version ranges)
        print_log(f'tsmnet: MMAction2 is installed but its registry does not import ({err}); '
                  'use type="tsmnet.ResNetTSM" in configs', logger='current',
                  level=logging.WARNING)
        return False
    for name, cls in DROP_IN_NAMES.items():
        MMACTION_MODELS.register_module(name=name, module=cls, force=True)
    _guard_registrations(MMACTION_MODELS, DROP_IN_NAMES)
    return True


MMACTION_DROP_IN: bool = install_mmaction_drop_in()
