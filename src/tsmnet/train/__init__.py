"""Fine-tuning as a library: ``finetune(FinetuneConfig(...))``, on one process or many.

Owns the training loop, checkpoints (``last.pth`` to resume, ``best.pth``, ``checkpoint.pth``),
validation, mixed precision and the process group of ``torchrun``; ``tsmnet finetune`` only
parses its options into a :class:`FinetuneConfig` and prints the result.
"""

from .batchnorm import apply_partial_bn, freeze_batch_norms, statistics_from_this_batch
from .distributed import Processes, process_group
from .finetune import (
    ConfigError,
    EpochRecord,
    FinetuneConfig,
    FinetuneResult,
    default_workers,
    evaluate,
    finetune,
)
from .model import build_architecture, build_model

__all__ = ['ConfigError', 'EpochRecord', 'FinetuneConfig', 'FinetuneResult', 'Processes',
           'apply_partial_bn', 'build_architecture', 'build_model', 'default_workers',
           'evaluate', 'finetune', 'freeze_batch_norms', 'process_group',
           'statistics_from_this_batch']
