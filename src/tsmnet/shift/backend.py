"""What a shift backend is: the interface every module in ``dispatch.BACKENDS`` provides.

A backend is a module (functional, torch_ops, native, triton_kernels), not a class: each holds
its kernels and registered ops at module level. These Protocols write down what the
dispatcher calls, so a new backend knows what to provide; ``tests/shift/test_backend.py``
checks every backend module against them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from .spec import ShiftSpec


@runtime_checkable
class ShiftBackend(Protocol):
    """A backend that shifts into a new tensor."""

    NAME: str  # the name `use_backend` and ``TSMNET_SHIFT_BACKEND`` take

    def status(self) -> str:
        """Why the backend is unavailable on this machine, or '' when it is available."""

    def reasons(self, x: torch.Tensor, in_place: bool) -> list[str]:
        """Why it cannot take ``x`` (``[N * T, C, H, W]``), in place or not; [] if it can."""

    def copy(self, x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
        """The shifted copy of ``x``, in ``x``'s memory format (eager)."""

    def traced(self, x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
        """The shifted copy as ``torch.compile`` / export should record it."""


@runtime_checkable
class InPlaceShiftBackend(ShiftBackend, Protocol):
    """A backend that can also shift in place (only the folds move) and undo it."""

    def shift_(self, x: torch.Tensor, spec: ShiftSpec, keep: bool) -> Callable[[], None]:
        """Shift ``x`` in place, bumping its version counter; return what undoes the shift
        (a no-op when ``keep``)."""
