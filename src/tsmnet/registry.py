"""tsmnet's MMEngine registries, the MMAction2 drop-in, and loadable Runner checkpoints.

This module is the MMEngine / MMAction2 glue, and importing it is what asks for the three
effects below; ``import tsmnet`` imports it only where MMEngine is already in use (an
MMAction2 config's ``custom_imports``, a Runner, MMAction2's tools), and MMEngine imports it
for a ``'tsmnet.'`` type. Only public APIs are used (docs/mmaction2.md#how-the-drop-in-works).

1. tsmnet's own registries, scope ``'tsmnet'``, children of MMEngine's root registries: so
   ``dict(type='tsmnet.ResNetTSM', ...)`` builds from any scope, with or without MMAction2.
2. Where MMAction2 is installed, ``ResNetTSM``, ``MobileNetV2TSM`` and ``MobileOneTSM``
   (``DROP_IN_NAMES``) in MMAction2's ``MODELS`` registry are tsmnet's classes, so an
   unchanged MMAction2 config with
   ``custom_imports = dict(imports=['tsmnet'], allow_failed_imports=False)`` builds it.
3. ``torch.load(weights_only=True)`` reads the checkpoints MMEngine's Runner writes
   (:mod:`tsmnet.weights.safe_globals`).

MMAction2 registers its own ``ResNetTSM`` (unforced) when ``mmaction.models`` is imported:
lazily, on the first build through its registry (the registry's ``locations``), or when the
user imports it. Had tsmnet registered first, that registration would raise ``KeyError``
("already registered"). So the drop-in first has MMAction2's registry import its models
(``Registry.import_from_location()``, what its first build would do), then registers
tsmnet's classes with ``force=True``: every later import of ``mmaction.models`` is a no-op,
whichever of tsmnet and ``mmaction.models`` came first. The PyPI wheel of mmaction2 1.2.0
cannot import ``mmaction.models`` (a folder is missing); there the drop-in puts
:mod:`tsmnet.mmaction_compat`'s empty stand-in for that folder in place first, as ``tsmnet
train`` does, so the wheel's registry builds at all. A deliberate ``force=True``
registration by the user after this still wins.
"""

from __future__ import annotations

import importlib.util
import logging

from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry

from .mmaction_compat import install_drn_standin
from .models import MobileNetV2, MobileNetV2TSM, MobileOne, MobileOneTSM, ResNet, ResNetTSM
from .weights.safe_globals import register_safe_globals

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

def install_mmaction_drop_in() -> bool:
    """Make ``ResNetTSM`` in MMAction2's ``MODELS`` registry build tsmnet's class.

    Called when this module is imported; safe to call again. Imports ``mmaction.models``
    through its registry, with the stand-in of :mod:`tsmnet.mmaction_compat` where the wheel
    lacks a folder of it (see the module docstring).

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
    install_drn_standin()  # only where the wheel lacks the folder
    try:  # MMAction2 registers its own ResNetTSM now, not after tsmnet's (no KeyError later)
        MMACTION_MODELS.import_from_location()
    except Exception as err:  # a broken mmaction.models: tsmnet's classes, and say why
        print_log(f'tsmnet: mmaction.models does not import ({type(err).__name__}: {err}); '
                  'a later import of it would fail on its ResNetTSM', logger='current',
                  level=logging.WARNING)
    for name, cls in DROP_IN_NAMES.items():
        MMACTION_MODELS.register_module(name=name, module=cls, force=True)
    return True


MMACTION_DROP_IN: bool = install_mmaction_drop_in()
register_safe_globals()  # the checkpoints MMEngine's Runner writes load under weights_only
