"""The one place that chooses how a shift runs: which backend, which strategy, and why.

Backends (one module each) give the same numbers: ``functional`` (slices and cat: tracing,
ONNX export), ``torch`` (PyTorch ops, any device), ``native`` (C++ CPU kernels) and
``triton`` (GPU kernels). Each lists the reasons it cannot take a tensor, as xformers'
attention backends do; :func:`choose` takes the first of :data:`AUTO_ORDER` with none, or the
one forced by ``TSMNET_SHIFT_BACKEND`` / :func:`use_backend`, which raises with its reasons
instead of falling back. The strategy follows from the call:

- ``copy``: a new shifted tensor (under autograd, its gradient is the opposite shift);
- ``in_place``: shift the input itself, run the module, shift it back (only the folds move).
  Only where the caller allows it (its input is read by nothing else meanwhile, as inside a
  ResNet block), with no gradient recorded and no forward hooks that could keep a reference
  to what the module consumed;
- ``fused``: shift and conv in one autograd node that keeps the unshifted input for backward
  (training, where the module is a plain conv and has no hooks); ``fused_in_place`` shifts
  the input in place for the conv instead of copying it.

Under ``torch.compile`` a shift that may work in place and feeds a plain conv with no hooks
(every ResNetTSM site) becomes the ``native`` backend's registered ``shift_conv2d`` op on
the CPU: the shift in place around the conv, as in eager, in whatever layout inductor gives
it (``fused_in_place``). Any other compiled shift is a copy: ``auto`` takes the ``triton``
registered op for a CUDA tensor it can take and otherwise ``functional``, whose compiled
form is a pointwise gather that inductor fuses with its neighbours in the layout they want
(see :mod:`.functional`); a forced backend runs its registered op. Under ``torch.jit``
tracing, ``torch.export`` and ONNX export (both exporters), only ``functional``, which every
exporter maps to standard ops.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Literal, NamedTuple, cast

import torch
from torch import nn

from .._torch_compat import (
    functorch_transforms_active,
    global_module_hooks_set,
    is_tracing,
    module_hooks_set,
)
from . import functional, native, torch_ops, triton_kernels
from .backend import InPlaceShiftBackend, ShiftBackend
from .spec import ShiftSpec, spec_for

BackendName = Literal['functional', 'torch', 'native', 'triton']
Strategy = Literal['copy', 'in_place', 'fused', 'fused_in_place']
ENV_BACKEND = 'TSMNET_SHIFT_BACKEND'
BACKENDS: dict[str, ShiftBackend] = {  # modules satisfying ShiftBackend (backend.py)
    'functional': functional, 'torch': torch_ops, 'native': native, 'triton': triton_kernels}
AUTO_ORDER: tuple[str, ...] = ('triton', 'native', 'torch', 'functional')
# Under torch.compile, for a copy: an opaque op on the CPU gets the strides it was traced
# with, so inductor converts a channels-last ReLU output to contiguous before it and back
# before the conv; the functional backend's pointwise gather fuses into the ReLU instead.
COMPILE_ORDER: tuple[str, ...] = ('triton', 'functional')
# Under torch.compile, shift and conv as one registered op: the backends that have one (each
# with a compile_reasons(x) that looks at no size: sizes may be symbolic).
COMPILE_FUSED: tuple[str, ...] = ('native',)
VALID_NAMES: tuple[str, ...] = ('auto', *BACKENDS)

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    'tsmnet_shift_backend', default=None)

# Conv classes whose forward is exactly nn.Conv2d's: mmcv's wrapper (what ConvModule builds for
# conv_cfg=dict(type='Conv')) differs only for empty inputs on torch < 1.4.
_PLAIN_CONVS: tuple[type[nn.Module], ...] = (nn.Conv2d,)
try:
    from mmcv.cnn.bricks.wrappers import Conv2d as _MMCVConv2d

    _PLAIN_CONVS += (_MMCVConv2d,)
except ImportError:  # mmcv is optional here
    pass
try:
    from mmcv.cnn import ConvModule as _ConvModule
except ImportError:
    _ConvModule = None


#: Whether a ``torch.func`` transform (grad, vjp, jvp, vmap...) wraps the tensors.
functorch_active = functorch_transforms_active


class Plan(NamedTuple):
    """How one shift runs: the backend, the strategy, why, and the backends that ``auto``
    passed over before it (their reasons are spelled out by :func:`explain` only: the hot
    path formats no messages)."""

    backend: BackendName
    strategy: Strategy
    why: str
    passed_over: tuple[str, ...] = ()


def check_backend_name(name: object, source: str = 'backend') -> str:
    """Return ``name`` if it names a backend (or ``'auto'``); raise ``ValueError`` listing
    the valid names otherwise."""
    if name not in VALID_NAMES:
        raise ValueError(f'{source} must be one of {VALID_NAMES}, got {name!r}')
    return name  # type: ignore[return-value]


@torch.compiler.assume_constant_result
def forced_backend() -> str:
    """The backend forced for this thread or task: :func:`use_backend`, else
    ``TSMNET_SHIFT_BACKEND`` (read at the first shift of the process), else ``'auto'``."""
    return _forced.get() or _env_backend()


@lru_cache(maxsize=1)  # the environment is read once: this runs for every shift
def _env_backend() -> str:
    return check_backend_name(os.environ.get(ENV_BACKEND, 'auto') or 'auto', ENV_BACKEND)


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Force a shift backend inside the ``with`` body (this thread or asyncio task only).

    Args:
        name: ``'auto'``, ``'functional'``, ``'torch'``, ``'native'`` or ``'triton'``. A forced
            backend that cannot take a tensor raises ``RuntimeError`` saying why.

    Raises:
        ValueError: ``name`` is not a backend name.
    """
    token = _forced.set(check_backend_name(name, 'name'))
    try:
        yield
    finally:
        _forced.reset(token)


def backend_status() -> dict[str, str]:
    """Each backend's availability here: ``''`` where available, else why not.

    Builds the native kernels if they were not built yet (to know whether they can be).
    """
    return {name: module.status() for name, module in BACKENDS.items()}


def has_hooks(net: nn.Module | None) -> bool:
    """Whether any module hook is set that a fast path could bypass or mislead: a forward,
    pre-forward, backward, full backward or backward-pre hook, global or on ``net`` or a
    module inside it (a forward hook could keep a reference to what ``net`` consumed; the
    fused path computes the conv itself, so no module hook of the conv would run)."""
    if global_module_hooks_set():
        return True
    return net is not None and any(module_hooks_set(m) for m in net.modules())


def _plain_parameter(p: torch.Tensor | None) -> bool:
    return type(p) is nn.Parameter


def fuse_refusal(net: nn.Module | None) -> str:
    """Why the fused shift + conv would not compute ``net(shift(x))`` for this ``net`` (''
    when it would). Fusing reads ``net.weight`` itself, so it is only for a plain conv: an
    ``nn.Conv2d`` (or mmcv's ``Conv2d`` wrapper), not a subclass and with no instance-level
    ``forward``, whose weight and bias are plain parameters (not computed by a
    parametrization, ``weight_norm``, ``spectral_norm`` or a pruning mask, not a tensor
    subclass), with zero padding given as numbers."""
    if net is None or type(net) not in _PLAIN_CONVS:
        return f'{type(net).__name__} is not a plain nn.Conv2d'
    if 'forward' in net.__dict__:
        return 'the conv has an instance-level forward'
    if not _plain_parameter(net.weight) or not (net.bias is None or _plain_parameter(net.bias)):
        return 'the conv weight or bias is not a plain Parameter (parametrized, pruned or ' \
               'a tensor subclass)'
    if net.padding_mode != 'zeros' or isinstance(net.padding, str):
        return 'the conv pads otherwise than with numeric zero padding'
    return ''


def can_fuse(net: nn.Module | None) -> bool:
    """Whether the fused shift + conv computes ``net(shift(x))`` for this ``net`` (see
    :func:`fuse_refusal`)."""
    return not fuse_refusal(net)


def reads_input_only(net: nn.Module | None) -> bool:
    """Whether ``net(x)`` certainly neither writes into ``x`` nor returns a tensor sharing
    ``x``'s memory, which the in-place strategy needs (it restores ``x`` after ``net``).

    Trusted: a plain conv, mmcv's ``ConvModule`` whose first layer is a trusted conv, an
    ``nn.Sequential`` whose first module is trusted, and classes that promise it with a class
    attribute ``reads_input_only = True`` (tsmnet's residual blocks); none with an
    instance-level ``forward``. Anything else (``nn.Identity``, ``nn.Dropout`` in eval,
    ``nn.ReLU(inplace=True)``...) gets a copy.
    """
    if net is None:
        return True
    if 'forward' in net.__dict__:
        return False
    cls = type(net)
    if cls in _PLAIN_CONVS or getattr(cls, 'reads_input_only', False) is True:
        return True
    if cls is nn.Sequential:
        return len(net) > 0 and reads_input_only(net[0])
    if cls is _ConvModule:
        return net.order[0] == 'conv' and reads_input_only(net.conv)
    return False


def _wants_grad(x: torch.Tensor, net: nn.Module | None) -> bool:
    return torch.is_grad_enabled() and (
        x.requires_grad or (net is not None and any(p.requires_grad for p in net.parameters())))


def _strategy(x: torch.Tensor, in_place: bool, net: nn.Module | None) -> tuple[str, str]:
    """The strategy for eager mode, and why."""
    if functorch_active():
        return 'copy', 'a torch.func transform is active: the copy, a plain autograd op'
    if x.is_inference() and not torch.is_inference_mode_enabled():
        return 'copy', ('x is an inference tensor outside inference mode: it can be neither '
                        'written nor saved for backward')
    refusal = 'no module follows' if net is None else fuse_refusal(net)
    if _wants_grad(x, net):
        if refusal:
            return 'copy', f'autograd is recording and it cannot fuse: {refusal}'
        if has_hooks(net):
            return 'copy', 'a gradient is wanted, but module hooks must see the conv run'
        if in_place:
            return 'fused_in_place', 'training a plain conv whose input may be shifted in place'
        return 'fused', 'training a plain conv: autograd keeps the unshifted input'
    if not in_place:
        return 'copy', 'the caller does not allow shifting its input in place'
    if torch.is_grad_enabled():
        return 'copy', 'autograd is recording: the module may keep its input'
    if has_hooks(net):
        return 'copy', 'module hooks could keep a reference to the shifted input'
    if not reads_input_only(net):
        return 'copy', (f'{type(net).__name__} may write into its input or return it (only a '
                        f'plain conv, a ConvModule or Sequential that starts with one, or a '
                        f'class with reads_input_only = True is shifted in place)')
    return 'in_place', 'no autograd, no hooks, and the caller allows it'


def _compiled_strategy(in_place: bool, net: nn.Module | None) -> tuple[str, str]:
    """The strategy under ``torch.compile``, and why."""
    if in_place and can_fuse(net) and not has_hooks(net):
        return 'fused_in_place', ('compiling: shift and conv in one registered op that '
                                  'shifts the input in place around the conv')
    return 'copy', 'compiling: the registered op'


def plain_eager_cpu(x: torch.Tensor) -> bool:
    """Whether ``x`` is on the CPU in plain eager mode with the backend left to ``auto``: no
    compiling, tracing, exporting or ``torch.func`` transform. Then a copying shift is the
    native op if the kernels take ``x`` (:data:`NATIVE_COPY`): this is the half of that answer
    that can change between two calls; the other half depends on the signature only."""
    return (x.is_cpu and not torch.compiler.is_compiling() and forced_backend() == 'auto'
            and not is_tracing() and not torch.compiler.is_exporting()
            and not functorch_active())


def choose(x: torch.Tensor, spec: ShiftSpec, *, in_place: bool = False,
           net: nn.Module | None = None) -> Plan:
    """Choose the backend and the strategy of one shift of ``x``.

    Args:
        x: Frames ``[N * T, C, H, W]``, already checked.
        spec: The shift.
        in_place: The caller allows shifting ``x`` itself while ``net`` runs (nothing else
            reads it meanwhile). Defaults to False.
        net: The module that runs on the shifted frames, if any (for fusing and hooks).

    Raises:
        RuntimeError: The forced backend cannot take ``x`` (the message says why).
    """
    if net is None and not in_place and plain_eager_cpu(x) and not native.reasons(x, False):
        return NATIVE_COPY  # the plain op on the CPU: the one answer, without the walk below
    forced = forced_backend()
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_exporting():
        if forced not in ('auto', 'functional'):
            raise RuntimeError(f'shift backend {forced!r} (forced) cannot be traced: '
                               f'torch.jit tracing, torch.export and ONNX export record only '
                               f'the functional backend')
        return Plan('functional', 'copy', 'tracing or exporting: slices and cat')
    if functorch_active():
        # the tensors are the transforms' wrappers: the copy, whose autograd.Function has
        # grad, jvp and vmap rules, runs the backend on the unwrapped tensors
        return Plan('functional' if forced == 'auto' else forced, 'copy',  # type: ignore[arg-type]
                    'a torch.func transform is active: the copy, a plain autograd op')
    compiling = torch.compiler.is_compiling()
    strategy, why = _compiled_strategy(in_place, net) if compiling else _strategy(
        x, in_place, net)
    wants_in_place = strategy in ('in_place', 'fused_in_place')
    if forced != 'auto':
        module = BACKENDS[forced]
        refused = module.reasons(x, False)
        if refused:
            raise RuntimeError(f'shift backend {forced!r} (forced) cannot take x: '
                               f'{"; ".join(refused)}')
        if compiling and wants_in_place and forced not in COMPILE_FUSED:
            strategy, why = 'copy', f'compiling: {forced} has no fused registered op'
        elif wants_in_place and module.reasons(x, True):
            strategy, why = _without_in_place(strategy, f'{forced} has no in-place shift here')
        return Plan(forced, strategy, f'forced; {why}')
    if compiling and wants_in_place:
        for name in COMPILE_FUSED:
            if not BACKENDS[name].compile_reasons(x):  # no branch on (symbolic) sizes
                return Plan(name, strategy, why)
        strategy, why, wants_in_place = 'copy', 'compiling: the registered op', False
    passed_over: tuple[str, ...] = ()
    for name in COMPILE_ORDER if compiling else AUTO_ORDER:
        if name == 'triton' and x.device.type != 'cuda':
            # Triton's interpreter (CPU tensors) is for tests: only when forced
            passed_over += (name,)
            continue
        if not BACKENDS[name].reasons(x, wants_in_place):
            break
        if wants_in_place and not BACKENDS[name].reasons(x, False):
            strategy, why = _without_in_place(strategy, f'{name} cannot shift in place here')
            break
        passed_over += (name,)
    if compiling and name == 'functional':
        why = 'compiling: a pointwise gather that inductor fuses with its neighbours'
    return Plan(name, strategy, why, passed_over)


# The native op (tsmnet::shift_copy), whose autograd and forward AD are in C++; torch.func
# transforms take the Python autograd.Function instead (they need its vmap rule).
NATIVE_COPY = Plan('native', 'copy', 'the caller does not allow shifting its input in place',
                    ('triton',))


def in_place_backend(x: torch.Tensor) -> InPlaceShiftBackend | None:
    """The backend that shifts ``x`` in place here (the forced one, else the first of
    :data:`AUTO_ORDER`; Triton for CUDA tensors only unless forced), or None where none can.
    For kernels below autograd (a registered op's implementation), which make no choice of
    strategy."""
    forced = forced_backend()
    for name in AUTO_ORDER if forced == 'auto' else (forced,):
        if name == 'triton' and forced == 'auto' and x.device.type != 'cuda':
            continue
        if not BACKENDS[name].reasons(x, True):  # only in-place backends accept in place
            return cast(InPlaceShiftBackend, BACKENDS[name])
    return None


def _without_in_place(strategy: str, why: str) -> tuple[str, str]:
    return ('fused' if strategy == 'fused_in_place' else 'copy'), why


def explain(x: torch.Tensor, num_segments: int, shift_div: int = 8,
            mode: str = 'bidirectional', *, in_place: bool = False,
            net: nn.Module | None = None) -> str:
    """Say how :func:`tsmnet.temporal_shift` (or a shift module with ``in_place`` and
    ``net``) would shift ``x`` here, and why: ``'backend/strategy: reasons'``."""
    plan = choose(x, spec_for(x, num_segments, shift_div, mode), in_place=in_place, net=net)
    text = f'{plan.backend}/{plan.strategy}: {plan.why}'
    wants_in_place = plan.strategy in ('in_place', 'fused_in_place')
    over = []
    for name in plan.passed_over:
        if name == 'triton' and x.device.type != 'cuda':
            over.append(f'triton: x is on {x.device.type} (not chosen unless forced)')
        else:
            over.append(f'{name}: {"; ".join(BACKENDS[name].reasons(x, wants_in_place))}')
    return text + (' (passed over: ' + ' | '.join(over) + ')' if over else '')
