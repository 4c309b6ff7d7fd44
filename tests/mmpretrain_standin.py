"""MMPretrain 1.2.0's and MMAction2 1.2.0's MobileOne classes in the test process, for parity.

``import mmpretrain.models`` imports ``torchvision`` (``torchvision.ops.boxes`` in its metrics
and box utilities, ``torchvision.transforms`` in its data transforms), and torchvision from
PyPI does not import beside torch 2.13. None of that code runs when a backbone is built, so
empty stand-in modules let the import pass. They are put in ``sys.modules`` of the test
process only, and only where torchvision cannot be imported; the library never does this.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import torch
from mmaction_standin import load_compat_without_tsmnet

#: The torchvision modules MMPretrain imports at ``import mmpretrain.models``.
STANDIN_MODULES = ('torchvision', 'torchvision.ops', 'torchvision.ops.boxes',
                   'torchvision.transforms', 'torchvision.transforms.functional',
                   'torchvision.transforms.transforms')


class _InterpolationMode:
    """Names MMPretrain reads off ``torchvision.transforms.InterpolationMode`` at import."""

    NEAREST = 'nearest'
    BILINEAR = 'bilinear'
    BICUBIC = 'bicubic'
    BOX = 'box'
    HAMMING = 'hamming'
    LANCZOS = 'lanczos'


def _torchvision_imports() -> bool:
    if importlib.util.find_spec('torchvision') is None:
        return False
    try:
        importlib.import_module('torchvision.ops.boxes')
    except Exception:  # noqa: BLE001  (any failure of the real module: use the stand-in)
        for name in [n for n in sys.modules if n == 'torchvision' or
                     n.startswith('torchvision.')]:
            del sys.modules[name]
        return False
    return True


def install_torchvision_standin() -> bool:
    """Put empty ``torchvision`` modules in ``sys.modules`` unless the real one imports.

    Returns:
        True if the stand-in is in place (now or before), False if the real torchvision is used.
    """
    if getattr(sys.modules.get('torchvision'), '__tsmnet_standin__', False):
        return True
    if _torchvision_imports():
        return False
    for name in STANDIN_MODULES:
        module = types.ModuleType(name)
        module.__tsmnet_standin__ = True
        module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition('.')
        if parent:
            setattr(sys.modules[parent], child, module)
    sys.modules['torchvision.transforms.transforms'].InterpolationMode = _InterpolationMode
    sys.modules['torchvision.transforms'].InterpolationMode = _InterpolationMode
    sys.modules['torchvision'].__version__ = '0.0.0+tsmnet-standin'
    # what other test dependencies read of torchvision.ops when they import (ptflops maps
    # DeformConv2d to its counter): a class no module here is an instance of
    sys.modules['torchvision.ops'].DeformConv2d = type('DeformConv2d', (torch.nn.Module,), {})
    return True


def import_reference_mobileone() -> tuple[type, type]:
    """MMPretrain's ``MobileOne`` and MMAction2's ``MobileOneTSM``.

    Raises:
        ImportError: MMPretrain (or one of its undeclared needs: modelindex, mat4py, einops)
            or MMAction2 is missing; the message says which.
    """
    install_torchvision_standin()
    mobileone = importlib.import_module('mmpretrain.models.backbones.mobileone').MobileOne
    # MMAction2's own models package (with the stand-in for the module its wheel lacks;
    # loaded without importing tsmnet, so import-order tests stay meaningful), then the
    # MobileOneTSM module, which its backbones package skipped if MMPretrain did not import
    # when it was first loaded
    load_compat_without_tsmnet().import_mmaction_models()
    name = 'mmaction.models.backbones.mobileone_tsm'
    if name in sys.modules:
        return mobileone, sys.modules[name].MobileOneTSM
    # tsmnet's drop-in (tsmnet.registry) may already hold the name MobileOneTSM in MMAction2's
    # registry: MMAction2's module registers it unforced on import, so the name is set aside
    # for that import and given back to whichever class held it
    from mmaction.registry import MODELS

    held = MODELS._module_dict.pop('MobileOneTSM', None)
    try:
        tsm = importlib.import_module(name).MobileOneTSM
    finally:
        if held is not None:
            MODELS.register_module(name='MobileOneTSM', module=held, force=True)
    return mobileone, tsm
