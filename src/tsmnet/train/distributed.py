"""One process or many: the process group that ``torchrun`` describes in the environment.

``torchrun --nproc_per_node=N -m tsmnet finetune ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; every process trains on its share of the data (``DistributedSampler``) and
DDP averages the gradients. Gloo on the CPU, NCCL on GPUs (one per local rank). With torch
2.13 a process that leaves without ``barrier()`` then ``destroy_process_group()`` aborts
after its work is done, so :func:`process_group` always ends with both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes.

    Args:
        rank: global rank (0 writes the files).
        world_size: processes in all.
        local_rank: rank on this machine (its GPU).
        device: the device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes files and reports (rank 0)."""
        return self.rank == 0

    def all_sum(self, *values: float) -> list[float]:
        """Sums of ``values`` over all processes (the values themselves with one process)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


@contextlib.contextmanager
def process_group(device: str = 'cpu') -> Iterator[Processes]:
    """Join the process group ``torchrun`` set up (none without ``WORLD_SIZE`` > 1).

    Args:
        device: ``'cpu'`` (gloo) or ``'cuda'`` (NCCL; local rank ``i`` takes ``cuda:i``).
            An explicit ``'cuda:K'`` is kept with one process.

    Yields:
        The :class:`Processes`; on exit, a barrier then ``destroy_process_group()``.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    target = torch.device(device)
    if world_size <= 1 or dist.is_initialized():
        if dist.is_initialized():  # a caller's group: use it, leave it to the caller
            yield Processes(dist.get_rank(), dist.get_world_size(),
                            int(os.environ.get('LOCAL_RANK', '0')), target)
        else:
            yield Processes(device=target)
        return
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if target.type == 'cuda':
        target = torch.device('cuda', local_rank)
        torch.cuda.set_device(target)
    dist.init_process_group('nccl' if target.type == 'cuda' else 'gloo')
    try:
        yield Processes(dist.get_rank(), dist.get_world_size(), local_rank, target)
        dist.barrier()
    finally:
        dist.destroy_process_group()
