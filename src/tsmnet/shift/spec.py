"""What a shift is: one small, hashable description, and the checks of its arguments.

TSM (Lin, Gan & Han, ICCV 2019, https://arxiv.org/abs/1811.08383) moves a fraction of the
channels of every frame to its neighbouring frames. A :class:`ShiftSpec` says which: the
frames per clip, the fold (channels per shifted group) and the direction of each group, the
groups lying side by side from channel 0. Every backend takes one, so no backend re-derives
the groups from ``shift_div`` and ``mode``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Literal, TypeVar

import torch

ShiftMode = Literal['bidirectional', 'causal']
SHIFT_MODES: tuple[str, ...] = ('bidirectional', 'causal')
_F = TypeVar('_F', bound=Callable)


def cached_when_eager(fn: _F) -> _F:
    """``fn`` with an ``lru_cache`` in eager mode (it runs for every shift), and uncached when
    ``torch.compile`` traces it: dynamo warns about every ``lru_cache`` it meets."""
    cached = lru_cache(maxsize=256)(fn)

    @wraps(fn)
    def call(*args):
        return fn(*args) if torch.compiler.is_compiling() else cached(*args)
    return call  # type: ignore[return-value]


@dataclass(frozen=True)
class ShiftSpec:
    """One shift of frames ``[N * T, C, H, W]``.

    Group ``p`` is channels ``[p * fold, (p + 1) * fold)``; ``dirs[p] = +1`` means frame ``t``
    reads frame ``t + 1`` of its clip, ``-1`` frame ``t - 1``. A frame outside the clip reads as
    zeros; channels after the groups are unchanged.

    Attributes:
        num_segments: Frames per clip ``T``.
        fold: Channels per shifted group, ``C // shift_div``.
        dirs: The direction of each group.
    """

    num_segments: int
    fold: int
    dirs: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (isinstance(self.dirs, tuple) and 1 <= len(self.dirs) <= 2
                and all(d in (-1, 0, 1) for d in self.dirs)):
            raise ValueError(f'dirs must be a tuple of one or two directions in (-1, 0, 1), '
                             f'got {self.dirs!r}')
        if self.num_segments < 1 or self.fold < 1:
            raise ValueError(f'num_segments and fold must be >= 1, got {self.num_segments} '
                             f'and {self.fold}')
        # the (t, fold, dirs) arguments of the registered ops, made once (the ops never
        # modify the list); not a field: equality and hashing stay those of the three above
        object.__setattr__(self, 'op_args', (self.num_segments, self.fold, list(self.dirs)))

    @staticmethod
    @cached_when_eager  # one spec per site: the same few every forward
    def of(num_segments: int, fold: int, mode: str = 'bidirectional') -> ShiftSpec:
        """The spec of ``mode``: bidirectional reads the next frame in group 0 and the
        previous one in group 1; causal (the paper's online TSM) reads the previous frame in
        group 0 only.

        Raises:
            ValueError: ``mode`` is not one of :data:`SHIFT_MODES`.
        """
        check_shift_mode(mode, 'mode')
        return ShiftSpec(num_segments, fold, (-1,) if mode == 'causal' else (1, -1))

    def reversed(self) -> ShiftSpec:
        """The opposite shift: the gradient of this one."""
        return ShiftSpec(self.num_segments, self.fold, tuple(-d for d in self.dirs))

    @property
    def shifted_channels(self) -> int:
        """Channels that move: ``len(dirs) * fold``, from channel 0."""
        return len(self.dirs) * self.fold

    def groups(self) -> tuple[tuple[int, int, int], ...]:
        """``(first channel, last channel + 1, direction)`` of each group."""
        return tuple((p * self.fold, (p + 1) * self.fold, d) for p, d in enumerate(self.dirs))


def check_shift_mode(mode: object, name: str = 'shift_mode') -> None:
    """Raise ``ValueError`` unless ``mode`` is one of :data:`SHIFT_MODES`."""
    if mode not in SHIFT_MODES:
        raise ValueError(f'{name} must be one of {SHIFT_MODES}, got {mode!r}')


def check_shift_div(shift_div: object, mode: str, name: str = 'shift_div') -> None:
    """Raise unless ``shift_div`` is an int that leaves room for the shifted folds.

    The bidirectional shift moves two folds of ``C // shift_div`` channels, so it needs
    ``shift_div >= 2``; the causal shift moves one fold and needs ``shift_div >= 1``.
    """
    if isinstance(shift_div, bool) or not isinstance(shift_div, int):
        raise TypeError(f'{name} must be an int, got {type(shift_div).__name__}')
    least = 2 if mode == 'bidirectional' else 1
    if shift_div < least:
        raise ValueError(
            f'{name} must be >= {least} for shift_mode={mode!r} (it shifts '
            f'{"two folds" if least == 2 else "one fold"} of C // {name} channels), '
            f'got {shift_div}')


def check_num_segments(num_segments: object, name: str = 'num_segments') -> None:
    """Raise unless ``num_segments`` is a positive int."""
    if isinstance(num_segments, bool) or not isinstance(num_segments, int):
        raise TypeError(f'{name} must be an int, got {type(num_segments).__name__}')
    if num_segments < 1:
        raise ValueError(f'{name} must be >= 1, got {num_segments}')


def check_clip_frames(x: object, num_segments: int, name: str = 'x', *,
                      nonempty: bool = False) -> None:
    """Raise unless ``x`` is frames ``[N * T, C, H, W]`` with ``T = num_segments`` (and
    ``N >= 1`` if ``nonempty``): the one check of a clip batch, for the op, the modules and
    the backbones. The messages name ``name``, what was expected and what came."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(x).__name__}')
    if x.dim() != 4:
        raise ValueError(f'{name} must be 4-D [N * T, C, H, W], got shape {tuple(x.shape)}')
    if x.shape[0] % num_segments != 0 or (nonempty and x.shape[0] == 0):
        raise ValueError(
            f'the batch of {name} ({x.shape[0]} frames) must be a '
            f'{"positive " if nonempty else ""}multiple of num_segments ({num_segments}): '
            f'frames come as [N * T, C, H, W] with T = num_segments')


def check_frames(x: object, num_segments: int, shift_div: int,
                 mode: str = 'bidirectional') -> int:
    """Check the arguments of :func:`tsmnet.temporal_shift` (``mode`` aside); return the fold.

    Raises ``TypeError``/``ValueError`` naming the argument, what was expected and what came.
    """
    check_num_segments(num_segments)
    check_shift_div(shift_div, mode)
    check_clip_frames(x, num_segments, 'x')
    c = x.shape[1]
    fold = c // shift_div
    if fold == 0:
        raise ValueError(
            f'shift_div={shift_div} leaves no channel to shift in x with {c} channels '
            f'(C // shift_div must be >= 1)')
    return fold


def spec_for(x: torch.Tensor, num_segments: int, shift_div: int, mode: str) -> ShiftSpec:
    """Check the arguments of a shift of ``x`` and describe it."""
    check_shift_mode(mode, 'mode')
    return ShiftSpec.of(num_segments, check_frames(x, num_segments, shift_div, mode), mode)


def frames_layout(x: torch.Tensor) -> str:
    """``'contiguous'``, ``'channels_last'`` or ``'strided'`` (any other layout)."""
    if x.is_contiguous():
        return 'contiguous'
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return 'channels_last'
    return 'strided'


def dense_frames(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself if contiguous or channels-last, else a contiguous copy: what every kernel
    takes (a gradient may come expanded or strided)."""
    return x.contiguous() if frames_layout(x) == 'strided' else x


def is_lazy_view(x: torch.Tensor) -> bool:
    """Whether ``x`` is a conjugate, negative or quantized view, whose bytes are not its
    values. Compiled graphs have none (and dynamo cannot trace the question)."""
    if torch.compiler.is_compiling():
        return False
    return x.is_conj() or x.is_neg() or x.is_quantized
