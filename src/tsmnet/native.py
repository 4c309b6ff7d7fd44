"""Old import path of the native CPU kernels, kept for users: see
:mod:`tsmnet.shift.native`. To compare with the PyTorch ops, force that backend:
``with tsmnet.shift.use_backend('torch'): ...``."""

from .shift.native import ENV_SWITCH, SOURCE, kernels, why_not  # noqa: F401  (re-exports)
