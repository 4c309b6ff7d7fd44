"""Deployment: ``tsmnet.export`` to ONNX (fp32, int8) and ExecuTorch, each file verified.

Owns writing a model (a recognizer or a backbone; the whole clip or the online step) to a
runtime's format and checking the file against eager PyTorch right after writing. It may
import models, stream, video (calibration clips), fileio and shift; nothing imports it but
the commands and :mod:`tsmnet.stream` (which uses the leaf :mod:`.onnx` writer only; this
``__init__`` stays light for that reason, and :func:`tsmnet.export` lives in :mod:`.api`).

Modules: :mod:`.api` (``export``), :mod:`.modules` (what a clip and a step export),
:mod:`.onnx` (writing a self-contained ``.onnx``), :mod:`.quantize` (ONNX Runtime int8),
:mod:`.executorch` (``.pte``), :mod:`.calibration`, :mod:`.verify`, :mod:`.report`.
"""

from .onnx import step_names, write_onnx

__all__ = ['step_names', 'write_onnx']
