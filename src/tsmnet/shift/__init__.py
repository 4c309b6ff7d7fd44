"""The temporal shift family: the public op, one dispatcher, one module per backend.

- :func:`temporal_shift` / :func:`temporal_shift_reference`: the op and its plain oracle;
- :func:`shift_then`: what :class:`tsmnet.TemporalShift` calls (copy, in place, or fused);
- :class:`shifted_in_place`: the one in-place-and-undo primitive every in-place strategy uses;
- :func:`use_backend`, ``TSMNET_SHIFT_BACKEND``: force ``functional``, ``torch``, ``native``
  or ``triton`` (or ``auto``); :func:`backend_status` and :func:`explain` say what is
  available and what a call would run, and why.

Owns the op family; it imports nothing of tsmnet's outside itself, so everything may import
it. See ``docs/shift_engine.md``.
"""

from . import functional, native, torch_ops, triton_kernels  # noqa: F401  (the backends)
from .dispatch import (
    AUTO_ORDER,
    BACKENDS,
    ENV_BACKEND,
    VALID_NAMES,
    Plan,
    backend_status,
    can_fuse,
    choose,
    explain,
    forced_backend,
    fuse_refusal,
    has_hooks,
    reads_input_only,
    use_backend,
)
from .in_place import shift_owned, shifted_in_place
from .op import shift_then, temporal_shift, temporal_shift_reference
from .spec import (
    SHIFT_MODES,
    ShiftMode,
    ShiftSpec,
    check_frames,
    check_num_segments,
    check_shift_div,
    check_shift_mode,
    spec_for,
)

__all__ = [
    'AUTO_ORDER', 'BACKENDS', 'ENV_BACKEND', 'SHIFT_MODES', 'VALID_NAMES', 'Plan', 'ShiftMode',
    'ShiftSpec', 'backend_status', 'can_fuse', 'check_frames', 'check_num_segments',
    'check_shift_div', 'check_shift_mode', 'choose', 'explain', 'forced_backend',
    'fuse_refusal', 'has_hooks', 'reads_input_only', 'shift_owned', 'shift_then',
    'shifted_in_place', 'spec_for', 'temporal_shift', 'temporal_shift_reference', 'use_backend',
]
