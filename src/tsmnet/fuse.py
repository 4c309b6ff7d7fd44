"""Batch norm folded into the conv before it, for inference and export.

In eval mode a batch norm is a fixed per-channel scale and offset, so it can be folded into the
weight and bias of the conv that feeds it (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one
kernel and one pass over the activations fewer per conv. The result computes the same function
up to float rounding (about 1e-6 relative in float32), not bit for bit, and its state dict has
no batch-norm entries, so it is a model to run or export, not one to train or to save as a
checkpoint.

:class:`LiveFoldedConv` is the same fold for a module that must keep seeing the model's own
weights (the online stream, which shares them): it refolds whenever one of them changes.
"""

from __future__ import annotations

import copy

import torch
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks.wrappers import Conv2d as _MMCVConv2d
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from ._torch_compat import BatchNormBase, forward_hooks_set, global_forward_hooks_set
from .layers import TemporalShift


def fuse_conv_bn(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold each batch norm of ``model`` into the conv that directly precedes it.

    Every mmcv ``ConvModule`` whose norm is a batch norm (``BN``, ``SyncBN``...) and comes
    right after its conv is changed: the conv (the one a :class:`tsmnet.TemporalShift` wraps
    included, since the shift comes before the conv) takes the folded weight and bias, and the
    norm becomes ``nn.Identity``. Other norms (``GN``...) and other orders are left alone.
    Works for tsmnet's ``ResNet``/``ResNetTSM`` and for any model built from ``ConvModule``
    (MMAction2's included).

    Args:
        model: A model in eval mode (``model.eval()``): the fold uses the running statistics.
        inplace: Change ``model`` itself instead of a deep copy. Defaults to False.

    Returns:
        The model with the batch norms folded (``model`` itself when ``inplace``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``model`` or one of its batch norms to fold is in training mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f'model must be a torch.nn.Module, got {type(model).__name__}')
    if model.training:
        raise ValueError('model must be in eval mode (call model.eval() first): folding a '
                         'batch norm uses its running statistics, which training mode ignores')
    if not inplace:
        model = copy.deepcopy(model)
    for name, module in model.named_modules():
        if not (isinstance(module, ConvModule) and module.with_norm
                and isinstance(module.norm, BatchNormBase)
                and tuple(module.order[:2]) == ('conv', 'norm')):
            continue
        if module.norm.training:
            raise ValueError(f'the batch norm of {name} is in training mode: call '
                             f'model.eval() before folding')
        holder, attr = (module.conv, 'net') if isinstance(module.conv, TemporalShift) else (
            module, 'conv')
        setattr(holder, attr, fuse_conv_bn_eval(getattr(holder, attr), module.norm))
        setattr(module, module.norm_name, nn.Identity())
    return model


# Forwards that are the plain 2D convolution (mmcv's wrapper adds only empty-input handling
# for old torch versions); a subclass with its own forward is not folded.
_PLAIN_CONV_FORWARDS = (nn.Conv2d.forward, _MMCVConv2d.forward)


def foldable(module: nn.Module) -> bool:
    """Whether ``module`` is a ``ConvModule`` whose batch norm (with running statistics)
    directly follows its conv, the conv (or the conv a :class:`tsmnet.TemporalShift` wraps)
    being a plain ``nn.Conv2d``."""
    if not (isinstance(module, ConvModule) and module.with_norm
            and isinstance(module.norm, BatchNormBase)
            and module.norm.track_running_stats and tuple(module.order[:2]) == ('conv', 'norm')):
        return False
    if getattr(module, 'efficient_conv_bn_eval_forward', None) is not None:
        return False  # mmcv's own fold (efficient_conv_bn_eval) calls the norm itself
    conv = module.conv.net if isinstance(module.conv, TemporalShift) else module.conv
    return type(conv).forward in _PLAIN_CONV_FORWARDS


def _signature(tensors: tuple[torch.Tensor | None, ...]) -> tuple | None:
    """What identifies the values of ``tensors``: an in-place write bumps ``_version``, a
    move or a cast gives new storage; None for inference tensors, which keep no version."""
    try:
        return tuple(None if t is None else (t._version, t.data_ptr(), t.dtype, t.device)
                     for t in tensors)
    except RuntimeError:
        return None


class LiveFoldedConv(nn.Module):
    """``norm(conv(x))`` with the batch norm in eval mode, run as one conv whose weight and
    bias are folded from the live tensors of ``conv`` and ``norm``.

    The fold is cached and redone whenever one of those tensors is written in place
    (``load_state_dict``), moved, cast or replaced, so the result always follows the current
    weights, up to float rounding (about 1e-6 relative in float32). Hooks on ``conv`` or
    ``norm``, or an instance-level ``forward`` on ``conv``, are honoured by running the two
    modules unfolded. Inference only (no autograd through the fold).

    Args:
        conv: A plain ``nn.Conv2d`` or mmcv ``Conv2d`` (shared, not copied).
        norm: The batch norm that follows it, with running statistics; used in eval mode
            whatever its ``training`` flag.
    """

    def __init__(self, conv: nn.Conv2d, norm: BatchNormBase) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm
        self._key: tuple | None = None  # the signature of the tensors last folded
        self._eps = norm.eps
        self._folded: tuple[torch.Tensor, torch.Tensor] = (conv.weight, conv.bias)

    def _tensors(self) -> tuple[torch.Tensor | None, ...]:
        conv, norm = self.conv, self.norm
        return (conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean,
                norm.running_var)

    def _unfolded(self) -> bool:
        conv, norm = self.conv, self.norm
        return (forward_hooks_set(conv) or forward_hooks_set(norm)
                or global_forward_hooks_set() or 'forward' in vars(conv))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: the conv's input. Returns: ``norm(conv(x))``, ``norm`` in eval mode."""
        if self._unfolded():
            training = self.norm.training
            self.norm.training = False
            try:
                return self.norm(self.conv(x))
            finally:
                self.norm.training = training
        tensors = self._tensors()
        key = _signature(tensors)
        if key is None or key != self._key or self.norm.eps != self._eps:
            with torch.no_grad(), torch.inference_mode(False):
                weight, bias = fuse_conv_bn_weights(*tensors[:2], tensors[4], tensors[5],
                                                    self.norm.eps, *tensors[2:4])
            self._folded = (weight.detach(), bias.detach())
            self._key, self._eps = key, self.norm.eps
        return self.conv._conv_forward(x, *self._folded)
