"""Batch norm folded into the conv before it, for inference and export.

In eval mode a batch norm is a fixed per-channel scale and offset, so it can be folded into the
weight and bias of the conv that feeds it (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one
kernel and one pass over the activations fewer per conv. The result computes the same function
up to float rounding (about 1e-6 relative in float32), not bit for bit, and its state dict has
no batch-norm entries, so it is a model to run or export, not one to train or to save as a
checkpoint.
"""

from __future__ import annotations

import copy

from mmcv.cnn import ConvModule
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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
                and isinstance(module.norm, nn.modules.batchnorm._BatchNorm)
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
