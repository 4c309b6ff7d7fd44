"""Deployment: ``tsmnet.export`` to ONNX (fp32, int8) and ExecuTorch, each file verified.

Owns writing a model (a recognizer or a backbone; the whole clip or the online step) to a
runtime's format and checking the file against eager PyTorch right after writing. It may
import models, stream, video (calibration clips), fileio and shift; nothing imports it but
the commands.
"""
