"""Benchmarks: the timing harness every benchmark uses, and the figures of ``tsmnet bench``.

:mod:`~tsmnet.benchmark.harness` times candidates side by side (interleaved repeats, medians
and quartiles of per-repeat ratios, thread pinning, the load average, saved-activation bytes,
JSON); it imports only fileio. :mod:`~tsmnet.benchmark.suite` builds the models and runs the
figures; it may import the library below the commands (models, layers, fuse, shift, the
MMAction2 glue). ``tsmnet bench``, every script in ``benchmarks/`` and the tests use them;
nothing else in the library imports this package.
"""

from . import harness
from .harness import *  # noqa: F403  (the names harness.__all__ lists, owned there)

__all__ = harness.__all__
