"""Structural reparameterisation: a MobileOne block's branches folded into one conv.

MobileOne (An Improved One millisecond Mobile Backbone, https://arxiv.org/abs/2206.04040)
trains each block as a sum of branches, ``k x k`` conv + BN (``num_convs`` of them), a
``1 x 1`` conv + BN (when ``k > 1``) and a BN alone (the identity, when input and output
shapes agree). In inference every branch is linear, so the sum is one ``k x k`` conv with a
bias. This module is that arithmetic on tensors: the block's ``switch_to_deploy`` and
:func:`reparameterize_state_dict` (a whole training-form checkpoint at once) both use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F

__all__ = ['BN_EPS', 'fuse_conv_bn', 'identity_kernel', 'is_training_form',
           'reparameterize_block', 'reparameterize_state_dict']

StateDict = dict[str, torch.Tensor]

#: BatchNorm's default epsilon: the one MMPretrain's MobileOne uses unless ``norm_cfg`` says.
BN_EPS = 1e-5

_BN = ('weight', 'bias', 'running_mean', 'running_var')
# a block in training form: its first conv branch
_BLOCK = re.compile(r'^(?P<prefix>(?:.*\.)?)branch_conv_list\.0\.conv\.weight$')
_BRANCH = re.compile(r'^(?:branch_conv_list\.\d+|branch_scale|branch_norm)\.')


def fuse_conv_bn(kernel: torch.Tensor, norm: Mapping[str, torch.Tensor],
                 eps: float = BN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """The conv (weight and bias) equal to ``kernel`` (no bias) followed by a BN in eval mode.

    Args:
        kernel: ``[C_out, C_in / groups, k, k]``.
        norm: The BN's ``weight``, ``bias``, ``running_mean``, ``running_var`` (``[C_out]``).
        eps: The BN's epsilon. Defaults to 1e-5.

    Returns:
        ``(weight [C_out, C_in / groups, k, k], bias [C_out])``.
    """
    scale = norm['weight'] / (norm['running_var'] + eps).sqrt()
    return kernel * scale.reshape(-1, 1, 1, 1), norm['bias'] - norm['running_mean'] * scale


def identity_kernel(channels: int, in_per_group: int, kernel_size: int,
                    like: torch.Tensor) -> torch.Tensor:
    """The ``k x k`` kernel of a grouped conv that returns its input (a 1 at the centre tap
    of each channel's own input).

    Returns:
        ``[channels, in_per_group, k, k]`` in ``like``'s dtype and device.
    """
    kernel = like.new_zeros((channels, in_per_group, kernel_size, kernel_size))
    centre = kernel_size // 2
    index = torch.arange(channels, device=like.device)
    kernel[index, index % in_per_group, centre, centre] = 1
    return kernel


def _norm(params: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name: params[f'{prefix}{name}'] for name in _BN}


def reparameterize_block(params: Mapping[str, torch.Tensor],
                         eps: float = BN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """The one conv equal to a training-form MobileOne block's branches (BNs in eval mode).

    Args:
        params: The block's state dict keys relative to the block: ``branch_conv_list.I.conv.
            weight`` and ``branch_conv_list.I.norm.*``, optionally ``branch_scale.conv.weight``
            / ``branch_scale.norm.*`` (a 1x1 branch) and ``branch_norm.*`` (the identity).
        eps: The BNs' epsilon. Defaults to 1e-5.

    Returns:
        ``(weight [C_out, C_in / groups, k, k], bias [C_out])``, in the parameters' dtype.

    Raises:
        ValueError: ``params`` has no conv branch.
    """
    convs = sorted({int(m.group(1)) for key in params
                    if (m := re.match(r'^branch_conv_list\.(\d+)\.conv\.weight$', key))})
    if not convs:
        raise ValueError('a MobileOne block in training form has branch_conv_list.0.conv.weight; '
                         f'got keys {sorted(params)[:6]}')
    weight, bias = 0, 0
    for i in convs:
        w, b = fuse_conv_bn(params[f'branch_conv_list.{i}.conv.weight'],
                            _norm(params, f'branch_conv_list.{i}.norm.'), eps)
        weight, bias = weight + w, bias + b
    out_channels, in_per_group, kernel_size, _ = weight.shape
    if 'branch_scale.conv.weight' in params:
        w, b = fuse_conv_bn(params['branch_scale.conv.weight'],
                            _norm(params, 'branch_scale.norm.'), eps)
        pad = kernel_size // 2
        weight, bias = weight + F.pad(w, [pad, pad, pad, pad]), bias + b
    if 'branch_norm.weight' in params:
        w, b = fuse_conv_bn(identity_kernel(out_channels, in_per_group, kernel_size, weight),
                            _norm(params, 'branch_norm.'), eps)
        weight, bias = weight + w, bias + b
    return weight, bias


def is_training_form(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` holds MobileOne blocks with branches (not yet folded)."""
    return any(_BLOCK.match(key) for key in state_dict)


def reparameterize_state_dict(state_dict: Mapping[str, torch.Tensor],
                              eps: float = BN_EPS) -> StateDict:
    """A training-form MobileOne (or MobileOneTSM, or recognizer) state dict in deploy form.

    Every block's branch keys (``...branch_conv_list.*``, ``...branch_scale.*``,
    ``...branch_norm.*``) become ``...branch_reparam.weight`` and ``...branch_reparam.bias``,
    the keys of ``deploy=True`` and of ``switch_to_deploy()``; every other key (the SE
    layers, a head) stays as it is. A deploy-form state dict comes back unchanged.

    Args:
        state_dict: Keys of MMPretrain's ``MobileOne``, MMAction2's ``MobileOneTSM``, or a
            recognizer holding one (``backbone.stage1.0.net.branch_conv_list.0.conv.weight``).
        eps: The BNs' epsilon (``norm_cfg``'s ``eps``). Defaults to 1e-5.

    Returns:
        A new state dict, in the order of ``state_dict`` (each block's two keys where its
        first branch key was).

    Example::

        sd = torch.load('tsm_mobileone_s4.pth', weights_only=True)['state_dict']
        create_model(DEPLOY_NAME).load_state_dict(reparameterize_state_dict(sd))
    """
    prefixes = {m.group('prefix') for key in state_dict if (m := _BLOCK.match(key))}
    out: StateDict = {}
    with torch.no_grad():
        for key, value in state_dict.items():
            match = _BLOCK.match(key)
            if match is not None:
                prefix = match.group('prefix')
                block = {k[len(prefix):]: v for k, v in state_dict.items()
                         if k.startswith(prefix) and _BRANCH.match(k[len(prefix):])}
                weight, bias = reparameterize_block(block, eps)
                out[f'{prefix}branch_reparam.weight'] = weight
                out[f'{prefix}branch_reparam.bias'] = bias
                continue
            owner = next((p for p in prefixes if key.startswith(p) and
                          _BRANCH.match(key[len(p):])), None)
            if owner is None:
                out[key] = value
    return out
