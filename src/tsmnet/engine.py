"""Multi-process training through MMEngine's ``Runner`` where there is no GPU.

On GPUs, ``torchrun ... tools/train.py CONFIG --launcher pytorch`` with MMEngine's stock Runner
is all it takes. MMEngine 0.10.7 on a CPU-only PyTorch stops at three places, and PyTorch 2.13
adds a fourth:

1. ``launcher='pytorch'`` initialises the process group through ``init_dist``, which calls
   ``torch.cuda.set_device`` first.
2. The Runner skips its own initialisation when a process group already exists, so a script
   can't just initialise one ahead of it without also bypassing its ``dist_cfg``.
3. The Runner wraps the model with ``device_ids=[LOCAL_RANK]`` (also when a
   ``model_wrapper_cfg`` names a subclass of ``DistributedDataParallel``); DDP rejects
   ``device_ids`` for a module on the CPU.
4. A process that exits with a live process group, without ``dist.barrier()`` then
   ``dist.destroy_process_group()``, aborts after its work is done (exit code -6).

:class:`Runner` (``runner_type='tsmnet.Runner'`` in a config) is MMEngine's Runner with those
four handled: with ``launcher='pytorch'`` and no CUDA it starts a ``gloo`` process group from
torchrun's environment itself, wraps the model in :class:`CPUDistributedDataParallel`, and
tears the group down cleanly when the process exits normally; ``SyncBN`` layers (CUDA only in
PyTorch) become per-process BatchNorm there. With CUDA it is the stock Runner (plus the clean
teardown). MMAction2's own ``tools/train.py`` builds it from the
config's ``runner_type``.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import sys
import threading
from typing import Any

import torch
import torch.distributed as torch_dist
from mmengine.dist import is_distributed
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, is_model_wrapper, revert_sync_batchnorm
from mmengine.runner import Runner as MMEngineRunner
from torch import nn

from .registry import MODEL_WRAPPERS, RUNNERS

__all__ = ['CPUDistributedDataParallel', 'Runner', 'finalize_distributed',
           'init_cpu_distributed']


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """MMEngine's DDP wrapper that accepts a CPU module.

    MMEngine's Runner passes ``device_ids=[LOCAL_RANK]``; PyTorch's DDP only accepts
    ``device_ids`` for a module on one accelerator. For a module whose parameters all live on
    the CPU they are dropped; otherwise this is :class:`MMDistributedDataParallel`.

    Args:
        module: The model (an MMEngine ``BaseModel``).
        device_ids: Ignored for a CPU module, else passed to DDP. Defaults to None.
        **kwargs: Arguments of :class:`MMDistributedDataParallel`.
    """

    def __init__(self, module: nn.Module, device_ids: list[int] | None = None,
                 **kwargs: Any) -> None:
        if device_ids is not None and all(p.device.type == 'cpu' for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)


def init_cpu_distributed(backend: str = 'gloo', timeout: float | None = None,
                         **kwargs: Any) -> None:
    """Start the default process group from torchrun's environment, without touching CUDA.

    Reads ``RANK`` and ``WORLD_SIZE`` (and ``MASTER_ADDR``/``MASTER_PORT`` through the
    ``env://`` init method) as ``torchrun`` sets them.

    Args:
        backend: ``'gloo'`` or ``'mpi'``; a config's GPU backend (``'nccl'``) becomes ``'gloo'``.
            Defaults to ``'gloo'``.
        timeout: Seconds before a collective gives up (MMEngine's ``dist_cfg`` convention).
            Defaults to PyTorch's default.
        **kwargs: Other arguments of :func:`torch.distributed.init_process_group`.

    Raises:
        ValueError: If torchrun's ``RANK``/``WORLD_SIZE`` are missing.
    """
    missing = [k for k in ('RANK', 'WORLD_SIZE') if k not in os.environ]
    if missing:
        raise ValueError(f'launcher="pytorch" expects torchrun\'s environment, but {missing} '
                         'is not set; launch with `torchrun --nproc_per_node=N ...`')
    if backend not in ('gloo', 'mpi'):
        print_log(f'tsmnet: no CUDA device, using the gloo backend instead of {backend!r}',
                  logger='current')
        backend = 'gloo'
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(backend=backend, rank=int(os.environ['RANK']),
                                  world_size=int(os.environ['WORLD_SIZE']), **kwargs)


def finalize_distributed() -> None:
    """``barrier()`` then ``destroy_process_group()``, if a process group is alive.

    Call it at the end of a successful run (``Runner`` does so at exit): under PyTorch 2.13 a
    process that exits with a live group aborts.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


_teardown_lock = threading.Lock()
_teardown_registered = False
_uncaught_exception = False


def _register_teardown() -> None:
    """At exit, finalize the process group, unless the process is dying of an exception.

    After an uncaught exception the other ranks may never reach the barrier, so it is skipped
    (torchrun then stops the other workers).
    """
    global _teardown_registered
    with _teardown_lock:
        if _teardown_registered:
            return
        _teardown_registered = True
    previous_hook = sys.excepthook

    def excepthook(*args: Any) -> None:
        global _uncaught_exception
        _uncaught_exception = True
        previous_hook(*args)

    sys.excepthook = excepthook

    def teardown() -> None:
        if not _uncaught_exception:
            finalize_distributed()

    atexit.register(teardown)


@RUNNERS.register_module()
class Runner(MMEngineRunner):
    """MMEngine's ``Runner`` that also trains multi-process on CPUs (gloo).

    Use ``runner_type='tsmnet.Runner'`` in a config (MMAction2's ``tools/train.py`` honours
    it) and launch with ``torchrun --nproc_per_node=N tools/train.py CONFIG --launcher
    pytorch``. Arguments are those of :class:`mmengine.runner.Runner`.
    """

    def setup_env(self, env_cfg: dict) -> None:
        """Start a gloo process group for ``launcher='pytorch'`` when CUDA is absent."""
        if self.distributed and not is_distributed() and not torch.cuda.is_available():
            if self.launcher != 'pytorch':
                raise ValueError(f'without CUDA, tsmnet.Runner supports launcher="pytorch" '
                                 f'(torchrun) only, got launcher={self.launcher!r}')
            init_cpu_distributed(**env_cfg.get('dist_cfg', {}))
        super().setup_env(env_cfg)
        if is_distributed():
            _register_teardown()

    def wrap_model(self, model_wrapper_cfg: dict | None, model: nn.Module) -> nn.Module:
        """On CPUs: wrap in :class:`CPUDistributedDataParallel` instead of MMEngine's DDP, and
        turn ``SyncBN`` layers (CUDA only in PyTorch) back into per-process BatchNorm."""
        if (self.distributed and not is_model_wrapper(model)
                and not torch.cuda.is_available()):
            if any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()):
                print_log('tsmnet: SyncBN needs GPUs; training with per-process BatchNorm',
                          logger='current', level=logging.WARNING)
                model = revert_sync_batchnorm(model)
            wrapper_cfg = dict(model_wrapper_cfg or {})
            if wrapper_cfg.get('type', 'MMDistributedDataParallel') in (
                    'MMDistributedDataParallel', MMDistributedDataParallel):
                wrapper_cfg['type'] = 'tsmnet.CPUDistributedDataParallel'
                wrapper_cfg.setdefault('broadcast_buffers', False)  # as MMEngine's default
                wrapper_cfg.setdefault('find_unused_parameters',
                                       self.cfg.get('find_unused_parameters', False))
            model_wrapper_cfg = wrapper_cfg
        return super().wrap_model(model_wrapper_cfg, model)
