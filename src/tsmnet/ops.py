"""Old import path of the shift op, kept for users and pickles: see :mod:`tsmnet.shift`."""

from .shift import (  # noqa: F401  (re-exports)
    SHIFT_MODES,
    ShiftMode,
    check_frames,
    check_num_segments,
    check_shift_div,
    check_shift_mode,
    temporal_shift,
    temporal_shift_reference,
)
