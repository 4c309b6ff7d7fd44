"""What the registered shift ops share: their schema's arguments and their gradient.

Every backend that ``torch.compile`` may keep in a graph registers its copying shift as an op
``tsmnet::<name>(Tensor x, int t, int fold, int[] dirs) -> Tensor`` (``torch.library``), so
that the compiled graph calls the backend's kernel instead of re-deriving the shift from
slices. The gradient of every such op is the same op with the directions reversed, and it
saves nothing; :func:`register_gradient` registers that once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .spec import ShiftSpec

NAMESPACE = 'tsmnet'


def keep_nothing() -> None:
    """The undo of an in-place shift that is not to be undone (every backend returns it)."""


def op_args(spec: ShiftSpec) -> tuple[int, int, list[int]]:
    """The ``(t, fold, dirs)`` arguments of a registered shift op for ``spec`` (made once,
    with the spec; the ops never modify the list)."""
    return spec.op_args  # type: ignore[attr-defined]


def register_gradient(op: Any, prepare: Callable[[torch.Tensor], torch.Tensor] | None = None
                      ) -> None:
    """Register the gradient of the copying shift ``op``: ``op`` with reversed directions.

    Args:
        op: A registered op with the schema ``(Tensor x, int t, int fold, int[] dirs)``.
        prepare: Applied to the incoming gradient first (e.g. to give it a layout the
            kernel takes). Defaults to None, the gradient as it comes.
    """

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        _, ctx.t, ctx.fold, dirs = inputs
        ctx.back = [-d for d in dirs]

    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if prepare is not None:
            grad = prepare(grad)
        return op(grad, ctx.t, ctx.fold, ctx.back), None, None, None

    torch.library.register_autograd(op, backward, setup_context=setup_context)


def copy_like(x: torch.Tensor) -> torch.Tensor:
    """An uninitialised result of a copying shift of ``x``: same shape, dtype, device and
    memory format (contiguous or channels-last)."""
    return torch.empty_like(x, memory_format=torch.preserve_format)
