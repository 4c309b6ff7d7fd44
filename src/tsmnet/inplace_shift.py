"""Old import path of the in-place shift, kept for users: see :mod:`tsmnet.shift`. The
dispatcher (:func:`tsmnet.shift.choose`) decides when a module shifts in place."""

from .shift import shift_owned, shifted_in_place  # noqa: F401  (re-exports)
