"""What keeps the quick tier (``pytest -m "not slow"``) quick: a test not marked ``slow`` fails
if it starts a process, compiles with inductor or exports to ONNX.

Processes are seen through Python's audit events (``subprocess.Popen``, ``os.fork``,
``os.posix_spawn``, ``os.system``, ``os.exec``), inductor compiles through dynamo's counters
(one FX-graph cache hit, miss or bypass per compiled graph), exports by wrapping
``torch.onnx.export`` and ``torch.export.export`` for the session. Only a test's call phase is
watched: a fixture may build what many tests share (the native kernels, a session model).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch._dynamo.utils import counters  # tests may use torch internals; src/ may not

_PROCESS_EVENTS = frozenset({'subprocess.Popen', 'os.fork', 'os.forkpty', 'os.posix_spawn',
                             'os.spawn', 'os.system', 'os.exec'})

_watching = False
_seen: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watching and event in _PROCESS_EVENTS:
        what = args[1] if event == 'subprocess.Popen' and len(args) > 1 else args[:1]
        _seen.append(f'started a process ({event} {str(what)[:120]})')


def _watched(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _watching:
            _seen.append(f'called {name}')
        return fn(*args, **kwargs)

    return wrapper


def install() -> None:
    """Install the audit hook and the export wrappers (once per session)."""
    sys.addaudithook(_audit)  # cannot be removed; it does nothing unless a test is watched
    torch.onnx.export = _watched('torch.onnx.export', torch.onnx.export)
    torch.export.export = _watched('torch.export.export', torch.export.export)


def _inductor_compiles() -> int:
    return sum(v for k, v in counters['inductor'].items() if k.startswith('fxgraph_cache_'))


def watch() -> int:
    """Start watching a test's call; returns the inductor count to pass to :func:`verdict`."""
    global _watching
    _seen.clear()
    _watching = True
    return _inductor_compiles()


def verdict(compiles_before: int) -> list[str]:
    """Stop watching; what the test did that the quick tier does not allow."""
    global _watching
    _watching = False
    seen = list(dict.fromkeys(_seen))
    compiled = _inductor_compiles() - compiles_before
    if compiled:
        seen.append(f'compiled {compiled} graph(s) with inductor')
    return seen
