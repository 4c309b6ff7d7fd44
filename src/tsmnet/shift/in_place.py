"""The one in-place-and-undo primitive: :class:`shifted_in_place`.

Every strategy that works in place (a module's input shifted around the module in
inference, the fused shift + conv in training, eager or through the registered op
``tsmnet::shift_conv2d``) goes through it, so its promises hold for all of them:

- the frames come back bit for bit when the ``with`` body ends, also when it raises;
- the change is made through ``x.data``, the same memory under a version counter of its own:
  ``x``'s counter does not move, so a copy of ``x`` that autograd saved (a ReLU's output, a
  checkpoint's input) stays valid, and every backend behaves alike (each backend's ``shift_``
  bumps the counter of the tensor it is given, as any in-place op does). Nothing can observe
  the shifted values but the body: the dispatcher takes this path only where the caller
  allows it and no hook, transform or alias could keep them (see
  :func:`tsmnet.shift.dispatch.choose`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch

from .dispatch import BACKENDS, choose
from .spec import ShiftSpec


class shifted_in_place:  # noqa: N801  (a context manager, named like contextlib's)
    """Shift frames ``x`` in place for the ``with`` body, then restore them bit for bit.

    ``with shifted_in_place(x, spec) as shifted: ...`` gives ``shifted``, an alias of ``x``'s
    memory (``x.data``) holding the shifted frames. For callers that own ``x`` and record no
    gradient through the alias (a class rather than ``contextlib.contextmanager``: it runs
    for every in-place site).

    Args:
        x: Frames ``[N * T, C, H, W]``, contiguous or channels-last.
        spec: The shift.
        backend: The backend module that shifts (its ``shift_``). Defaults to None: the one
            the dispatcher chooses for an in-place shift of ``x``.

    Raises:
        RuntimeError: No backend can shift ``x`` in place here (the message says why).
    """

    __slots__ = ('_x', '_spec', '_backend', '_undo')

    def __init__(self, x: torch.Tensor, spec: ShiftSpec, backend: ModuleType | None = None
                 ) -> None:
        self._x, self._spec, self._backend = x, spec, backend

    def __enter__(self) -> torch.Tensor:
        backend = self._backend
        if backend is None:
            plan = choose(self._x, self._spec, in_place=True)
            if plan.strategy != 'in_place':
                raise RuntimeError(f'cannot shift x in place ({plan.backend}: {plan.why})')
            backend = BACKENDS[plan.backend]
        data = self._x.data
        self._undo = backend.shift_(data, self._spec, True)
        return data

    def __exit__(self, *exc: Any) -> None:
        self._undo()


def shift_owned(x: torch.Tensor, spec: ShiftSpec) -> torch.Tensor:
    """Shift a tensor that is the caller's own and is never to be restored (a gradient just
    computed, nothing else holds it): in place where the dispatcher finds a backend for it,
    else into a copy. Records no gradient."""
    with torch.no_grad():
        plan = choose(x, spec, in_place=True)
        backend = BACKENDS[plan.backend]
        if plan.strategy == 'in_place':
            backend.shift_(x, spec, False)
            return x
        return backend.copy(x, spec)
