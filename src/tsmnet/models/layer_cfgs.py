"""The mmcv layer configs (``conv_cfg``, ``norm_cfg``, ``act_cfg``) that the backbones build
their ``ConvModule`` s from: MMAction2's default where the caller gives None, else a copy of the
caller's dict (so that a backbone never alters or shares it).

One difference from MMAction2, for the conv: its default ``dict(type='Conv')`` builds mmcv's
``Conv2d`` wrapper, a subclass of ``nn.Conv2d`` whose forward differs only for empty inputs on
torch < 1.4. Tools that match the exact class (torchao's ``X86InductorQuantizer``, ptflops'
module backend) do not see it, so tsmnet builds a plain ``nn.Conv2d`` there instead: same module
paths, state-dict keys, initialisation and numbers.
"""

from __future__ import annotations

from typing import Any


def _copy_or(cfg: dict[str, Any] | None, default: dict[str, Any]) -> dict[str, Any]:
    return dict(default) if cfg is None else dict(cfg)


# mmcv's registry name of its Conv2d wrapper, and of the plain torch class (what tools see).
_MMCV_WRAPPER_CONV = 'Conv'
PLAIN_CONV = 'Conv2d'


def conv_cfg_or_default(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``cfg``, or a plain ``nn.Conv2d``; mmcv's ``Conv`` wrapper is replaced by ``Conv2d``.

    Every backbone builds its convs from this config, so every conv that MMAction2 would build
    as mmcv's wrapper is exactly ``nn.Conv2d`` (see the module docstring). Any other type (a
    class, ``'Conv3d'``, a plugin's conv) is kept as given.
    """
    cfg = _copy_or(cfg, dict(type=PLAIN_CONV))
    if cfg.get('type') == _MMCV_WRAPPER_CONV:
        cfg['type'] = PLAIN_CONV
    return cfg


def norm_cfg_or_default(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``cfg``, or a trainable ``BatchNorm2d``."""
    return _copy_or(cfg, dict(type='BN2d', requires_grad=True))


def act_cfg_or_default(cfg: dict[str, Any] | None, default_type: str) -> dict[str, Any]:
    """``cfg``, or an in-place ``default_type`` (``'ReLU'`` for ResNet, ``'ReLU6'`` for
    MobileNetV2)."""
    return _copy_or(cfg, dict(type=default_type, inplace=True))
