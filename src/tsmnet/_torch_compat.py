"""Every private PyTorch name tsmnet uses, in one place, with what happens where one is gone.

A PyTorch release may rename or drop any name that starts with ``_``. Each one tsmnet relies
on is reached here and nowhere else (``tests/test_torch_compat.py`` fails on a private
``torch`` name used anywhere else in ``src/``), with the torch versions it was checked on
(:data:`CHECKED_ON`) and what tsmnet does without it: a public equivalent where torch has one;
otherwise the conservative answer, which takes the slower general path with the same numbers
(every shift backend gives identical results), and one log line naming the missing name.

The hot path pays nothing for this: the names are looked up once, at import, and the shift
calls the functions bound here directly, as it called torch's before.

Private attributes of public objects that tsmnet reads in place (``Tensor._version``,
``Module._modules`` and a module's ``_forward_hooks``, ``_forward_pre_hooks``,
``_backward_hooks``, ``_backward_pre_hooks``) are as old as ``torch.nn`` and used throughout
PyTorch's own libraries; :func:`missing_names` checks them too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.autograd import forward_ad as _forward_ad
from torch.nn.modules import module as _module

_log = logging.getLogger(__name__)

#: The torch versions on which every name below was checked (the tests run on them).
CHECKED_ON = ('2.13.0',)

_missing: list[str] = []


def _private(owner: Any, owner_name: str, name: str, fallback: Any) -> Any:
    """``owner.name``, or ``fallback`` (noted in :func:`missing_names`) where it is gone."""
    value = getattr(owner, name, None)
    if value is None:
        _missing.append(f'{owner_name}.{name}')
        return fallback
    return value


def _always_true(*args: object) -> bool:
    return True


# --- the shift's dispatcher (shift/dispatch.py, shift/op.py, shift/native.py) ------------

#: Whether a ``torch.func`` transform (grad, vjp, jvp, vmap...) wraps the tensors. Without
#: it: "yes" (the copy through an ``autograd.Function`` with vmap and jvp rules; slower).
functorch_transforms_active: Callable[[], bool] = _private(
    torch._C, 'torch._C', '_are_functorch_transforms_active', _always_true)

#: Whether a tensor is a ``torch.func`` wrapper. Without it: "yes" (``Function.apply``).
is_functorch_wrapped_tensor: Callable[[torch.Tensor], bool] = _private(
    getattr(torch._C, '_functorch', None), 'torch._C._functorch',
    'is_functorch_wrapped_tensor', _always_true)

#: Whether ``torch.jit.trace`` is recording: the C++ function behind the public
#: ``torch.jit.is_tracing()``, without its Python frame. Without it: the public function.
is_tracing: Callable[[], bool] = _private(torch._C, 'torch._C', '_is_tracing',
                                          torch.jit.is_tracing)

#: Whether a ``TorchFunctionMode`` is active (then a shift goes through
#: ``__torch_function__``). Without it: "yes" (the overridable call; slower).
torch_function_mode_enabled: Callable[[], bool] = _private(
    torch._C, 'torch._C', '_is_torch_function_mode_enabled', _always_true)

if not isinstance(getattr(_forward_ad, '_current_level', None), int):
    _missing.append('torch.autograd.forward_ad._current_level')

    def forward_ad_active() -> bool:
        """Without the level: "yes" (the ``autograd.Function`` with a jvp rule; slower)."""
        return True
else:
    def forward_ad_active() -> bool:
        """Whether a ``torch.autograd.forward_ad`` level is open (a tangent may ride on a
        tensor). The level is a module global that ``dual_level`` rebinds: read per call."""
        return _forward_ad._current_level >= 0


# --- autograd.Function.apply without its per-call signature binding (shift/autograd.py) --

def _apply_positional(function: type[torch.autograd.Function], *args: Any) -> Any:
    """``function.apply(*args)``, every argument positional, through the C++ apply of
    ``torch._C._FunctionBase`` (what ``Function.apply`` calls after binding ``args`` to
    ``forward``'s signature, about 60 us per call for a ``setup_context`` function). With
    nothing to bind and no ``torch.func`` transform or wrapper about, the binding and the
    unwrapping after it change nothing. Checked at import: the ``apply`` that ``super()``
    finds after ``Function``'s is ``_FunctionBase``'s."""
    if functorch_transforms_active() or any(isinstance(a, torch.Tensor) and
                                            is_functorch_wrapped_tensor(a) for a in args):
        return function.apply(*args)
    return super(torch.autograd.Function, function).apply(*args)  # type: ignore[misc]


def _apply_bound(function: type[torch.autograd.Function], *args: Any) -> Any:
    """``function.apply(*args)``: the public call, where the C++ apply is not reachable."""
    return function.apply(*args)


_function_base = getattr(torch._C, '_FunctionBase', None)
if _function_base is not None and next(
        (c for c in torch.autograd.Function.__mro__[1:] if 'apply' in vars(c)), None) is (
        _function_base):
    apply_positional: Callable[..., Any] = _apply_positional
else:
    _missing.append('torch._C._FunctionBase.apply')
    apply_positional = _apply_bound


# --- nn.Module hooks (shift/dispatch.py, fuse.py) ----------------------------------------

_GLOBAL_HOOK_NAMES = ('_global_forward_hooks', '_global_forward_pre_hooks',
                      '_global_backward_hooks', '_global_backward_pre_hooks')
_HOOK_ATTRS = ('_forward_hooks', '_forward_pre_hooks', '_backward_hooks', '_backward_pre_hooks')
#: The global module hook dicts (``register_module_forward_hook`` & co. fill them in place).
GLOBAL_MODULE_HOOKS: tuple[dict[Any, Any], ...] = tuple(
    _private(_module, 'torch.nn.modules.module', name, {'missing': name})
    for name in _GLOBAL_HOOK_NAMES)  # gone: a non-empty stand-in, "a hook may be set"


def global_module_hooks_set() -> bool:
    """Whether any global forward, pre-forward, backward or backward-pre module hook is set."""
    return any(GLOBAL_MODULE_HOOKS)


def global_forward_hooks_set() -> bool:
    """Whether any global forward or pre-forward module hook is set."""
    return bool(GLOBAL_MODULE_HOOKS[0] or GLOBAL_MODULE_HOOKS[1])


def forward_hooks_set(module: torch.nn.Module) -> bool:
    """Whether ``module`` has a forward or pre-forward hook of its own (True where the
    attributes are gone)."""
    try:
        return bool(module._forward_hooks or module._forward_pre_hooks)
    except AttributeError:
        return True


def module_hooks_set(module: torch.nn.Module) -> bool:
    """Whether ``module`` has a forward, pre-forward, backward or backward-pre hook of its own.
    Where the attributes are gone: True."""
    try:
        return bool(module._forward_hooks or module._forward_pre_hooks
                    or module._backward_hooks or module._backward_pre_hooks)
    except AttributeError:
        return True


# --- base classes for isinstance checks (models, fuse, layers, stream, deploy, ...) -----

#: The base of every batch norm (``nn.modules.batchnorm._BatchNorm``: BatchNorm1d/2d/3d,
#: SyncBatchNorm, mmcv's). Without it: the public classes, for ``isinstance``.
BatchNormBase: Any = _private(torch.nn.modules.batchnorm, 'torch.nn.modules.batchnorm',
                              '_BatchNorm', (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d,
                                             torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm))
#: The base of every conv (``nn.modules.conv._ConvNd``). Without it: the public classes.
ConvBase: Any = _private(torch.nn.modules.conv, 'torch.nn.modules.conv', '_ConvNd',
                         (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
                          torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d,
                          torch.nn.ConvTranspose3d))


# --- registered ops (shift/native.py) ----------------------------------------------------

def overload_callable(overload: Any) -> Callable[..., Any]:
    """The C++ callable behind an ``OpOverload`` (``overload._op``): calling it skips
    ``OpOverload.__call__``'s Python frame. Without it: the overload itself."""
    return getattr(overload, '_op', overload)


# --- the native kernels' build folder (shift/native.py) ----------------------------------

def extension_build_directory(name: str) -> Path:
    """The folder where ``torch.utils.cpp_extension.load`` keeps extension ``name``
    (``cpp_extension._get_build_directory``: ``TORCH_EXTENSIONS_DIR/NAME``, by default
    ``~/.cache/torch_extensions/py311_cpu/NAME``). Without it: the same folder, found here."""
    from torch.utils import cpp_extension  # heavy (it imports setuptools): on first build

    get = getattr(cpp_extension, '_get_build_directory', None)
    if get is not None:
        return Path(get(name, verbose=False))
    root = os.environ.get('TORCH_EXTENSIONS_DIR')
    if root is None:  # the public root, and torch's per-Python, per-accelerator folder
        accelerator = (f'rocm{torch.version.hip.replace(".", "")}' if torch.version.hip else
                       f'cu{torch.version.cuda.replace(".", "")}' if torch.version.cuda else
                       'cpu')
        python = f'py{sys.version_info.major}{sys.version_info.minor}{sys.abiflags}'
        root = os.path.join(cpp_extension.get_default_build_root(), f'{python}_{accelerator}')
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- inductor (shift/fused.py) -----------------------------------------------------------

def inductor_fallback_with_conv_layout(ops: Iterable[Any]) -> None:
    """Register inductor's fallback lowering of ``ops`` with a layout rule that asks for
    channels-last 4-D inputs wherever inductor chose that layout for the graph's convs
    (``torch._inductor.lowering.make_fallback`` with a ``layout_constraint``). Inductor's
    lowering registry is not public: raises whatever a torch without it raises, and the
    caller keeps inductor's default rule (slower, same numbers)."""
    from torch._inductor import ir, lowering  # imported when a graph is compiled
    from torch._inductor.virtualized import V

    def channels_last_like_convs(fx_node: Any, *args: Any, **kwargs: Any) -> Any:
        if V.graph.layout_opt:
            args = tuple(ir.ExternKernel.require_channels_last(a)
                         if isinstance(a, ir.IRNode) and len(a.get_size()) == 4 else a
                         for a in args)
        return args, kwargs

    for op in ops:
        if op not in lowering.lowerings:
            lowering.make_fallback(op, layout_constraint=channels_last_like_convs, warn=False)


def inductor_freezing() -> Any:
    """A context in which inductor compiles with freezing (weights folded as constants), as
    the PT2E int8 flow needs (deploy/x86.py): ``torch._inductor.config.patch(freezing=True)``.
    ``torch.compile(options={'freezing': True})`` is the public spelling, but on torch 2.13 it
    fails (``onednn.qconv_prepack`` run on fake tensors). Where the config is gone: raises
    the ImportError or AttributeError of that torch."""
    from torch._inductor import config  # imported when an int8 model is compiled

    return config.patch(freezing=True)


def missing_names() -> list[str]:
    """The private names this torch lacks ([] on the versions of :data:`CHECKED_ON`)."""
    missing = list(_missing)
    for attr in _HOOK_ATTRS + ('_modules',):
        if not hasattr(torch.nn.Module(), attr):
            missing.append(f'torch.nn.Module.{attr}')
    if not hasattr(torch.zeros(()), '_version'):
        missing.append('torch.Tensor._version')
    return missing


if _missing:
    _log.warning('tsmnet: torch %s lacks %s (checked on torch %s); tsmnet takes the general '
                 'path there (same numbers, slower)', torch.__version__, ', '.join(_missing),
                 ', '.join(CHECKED_ON))
