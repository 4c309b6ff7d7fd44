"""The mmcv layer configs (``conv_cfg``, ``norm_cfg``, ``act_cfg``) that the backbones build
their ``ConvModule`` s from: MMAction2's default where the caller gives None, else a copy of the
caller's dict (so that a backbone never alters or shares it)."""

from __future__ import annotations

from typing import Any


def _copy_or(cfg: dict[str, Any] | None, default: dict[str, Any]) -> dict[str, Any]:
    return dict(default) if cfg is None else dict(cfg)


def conv_cfg_or_default(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``cfg``, or a plain ``Conv2d``."""
    return _copy_or(cfg, dict(type='Conv'))


def norm_cfg_or_default(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``cfg``, or a trainable ``BatchNorm2d``."""
    return _copy_or(cfg, dict(type='BN2d', requires_grad=True))


def act_cfg_or_default(cfg: dict[str, Any] | None, default_type: str) -> dict[str, Any]:
    """``cfg``, or an in-place ``default_type`` (``'ReLU'`` for ResNet, ``'ReLU6'`` for
    MobileNetV2)."""
    return _copy_or(cfg, dict(type=default_type, inplace=True))
