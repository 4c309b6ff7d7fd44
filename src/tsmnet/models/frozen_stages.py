"""What a backbone's ``train()`` keeps in eval mode: its frozen stages (no gradients either)
and, with ``norm_eval``, every batch norm; and ``train()`` returns ``self``, like every
``nn.Module`` (MMAction2's and MMPretrain's backbones return None)."""

from __future__ import annotations

from typing import TypeVar

from torch import nn

from .._torch_compat import BatchNormBase

Backbone = TypeVar('Backbone', bound='FrozenStages')


class FrozenStages(nn.Module):
    """Base of the backbones: they list their frozen modules in :meth:`_frozen_modules`
    (from ``frozen_stages``) and set ``norm_eval``."""

    norm_eval: bool

    def _frozen_modules(self) -> list[nn.Module]:
        raise NotImplementedError

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self: Backbone, mode: bool = True) -> Backbone:
        """Set train/eval mode, keeping frozen stages and (``norm_eval``) BNs in eval.
        Returns ``self``."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, BatchNormBase):
                    m.eval()
        return self
