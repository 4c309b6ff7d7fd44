"""Deployment: :func:`tsmnet.export` to ONNX (fp32, int8) and ExecuTorch, each file verified.

Owns writing a model (a recognizer or a backbone; the whole clip or the online step) to a
runtime's format and checking the file against eager PyTorch right after writing. It may
import models, stream, video (calibration clips), fileio and shift; nothing imports it but
the commands.

The function is ``tsmnet.export`` (:func:`tsmnet.deploy.api.export`); this package has its own
name so that a function and a package never share one (IDEs, type checkers and ``help()``
follow plain names).

Modules: :mod:`.api` (``export``), :mod:`.modules` (what a clip and a step export),
:mod:`.onnx` (a self-contained ``.onnx``), :mod:`.quantize` (ONNX Runtime int8),
:mod:`.executorch` (``.pte``), :mod:`.x86` (``tsmnet.quantize``: PT2E x86 int8, compiled),
:mod:`.calibration`, :mod:`.verify`, :mod:`.report`; :mod:`.runtime` (``clip_runner``,
``step_runner``: a model or an exported file under eager, compile, ONNX Runtime or OpenVINO).
"""

from .api import FORMATS, KINDS, export
from .onnx import write_onnx
from .quantize import Int8Options
from .report import ExportReport
from .runtime import ClipRunner, StepRunner, clip_runner, step_runner

__all__ = ['FORMATS', 'KINDS', 'ClipRunner', 'ExportReport', 'Int8Options', 'StepRunner',
           'clip_runner', 'export', 'step_runner', 'write_onnx']
