"""A hook for multi-process tests: every rank saves its model's parameters and buffers.

A config imports it with ``custom_imports = dict(imports=['tsmnet', 'dump_params_hook'])``
(this folder on ``PYTHONPATH``) and asks for it with
``custom_hooks = [dict(type='DumpParamsHook', out_dir=...)]``.
"""

from __future__ import annotations

import os

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class DumpParamsHook(Hook):
    """Save ``{'params': ..., 'buffers': ...}`` of this rank to ``out_dir/rank{R}_{when}.pt``.

    Args:
        out_dir: Folder for the files.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def _dump(self, runner, when: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {
            'params': {k: v.detach().clone() for k, v in model.named_parameters()},
            'buffers': {k: v.detach().clone() for k, v in model.named_buffers()},
            'world_size': runner.world_size,
        }
        os.makedirs(self.out_dir, exist_ok=True)
        torch.save(state, os.path.join(self.out_dir, f'rank{runner.rank}_{when}.pt'))

    def before_train(self, runner) -> None:
        self._dump(runner, 'before')

    def after_train(self, runner) -> None:
        self._dump(runner, 'after')
