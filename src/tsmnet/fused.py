"""Old import path of the fused shift + conv, kept for users: see :mod:`tsmnet.shift.fused`.
The dispatcher (:func:`tsmnet.shift.choose`) decides when it runs."""

from .shift import can_fuse  # noqa: F401  (re-export)
