"""Benchmarks: the timing harness every benchmark uses, and the figures of ``tsmnet bench``.

:mod:`~tsmnet.benchmark.harness` times candidates side by side (interleaved repeats, medians
and quartiles of per-repeat ratios, thread pinning, the load average, saved-activation bytes,
JSON); it imports only fileio. :mod:`~tsmnet.benchmark.suite` builds the models and runs the
figures; it may import the library below the commands (models, layers, fuse, shift, the
MMAction2 glue). ``tsmnet bench``, every script in ``benchmarks/`` and the tests use them;
nothing else in the library imports this package.
"""

from .harness import (
    Timer,
    frame_times,
    interleaved,
    loadavg,
    machine,
    medians,
    pinned_threads,
    ratio,
    saved_bytes,
    spread,
    to_json,
)

__all__ = ['Timer', 'frame_times', 'interleaved', 'loadavg', 'machine', 'medians',
           'pinned_threads', 'ratio', 'saved_bytes', 'spread', 'to_json']
