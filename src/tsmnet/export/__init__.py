"""Deployment: ``tsmnet.export`` to ONNX (fp32, int8) and ExecuTorch, each file verified.

Owns writing a model (a recognizer or a backbone; the whole clip or the online step) to a
runtime's format and checking the file against eager PyTorch right after writing. It may
import models, stream, video (calibration clips), fileio and shift; nothing imports it but
the commands.

The package is itself callable: ``import tsmnet.export; tsmnet.export(model, path, ...)`` is
:func:`tsmnet.export.api.export` (``from tsmnet.export import export`` too).

Modules: :mod:`.api` (``export``), :mod:`.modules` (what a clip and a step export),
:mod:`.onnx` (a self-contained ``.onnx``), :mod:`.quantize` (ONNX Runtime int8),
:mod:`.executorch` (``.pte``), :mod:`.calibration`, :mod:`.verify`, :mod:`.report`.
"""

import sys
import types
from typing import Any

from .api import FORMATS, KINDS, export
from .onnx import write_onnx
from .quantize import Int8Options
from .report import ExportReport

__all__ = ['FORMATS', 'KINDS', 'ExportReport', 'Int8Options', 'export', 'write_onnx']


class _CallablePackage(types.ModuleType):
    """``tsmnet.export(...)`` calls :func:`export` (DESIGN.md's public name)."""

    def __call__(self, *args: Any, **kwargs: Any) -> ExportReport:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
