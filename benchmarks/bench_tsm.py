"""The tsmnet benchmark suite: ``python benchmarks/bench_tsm.py [options]``.

The same as ``tsmnet bench`` (see ``tsmnet bench --help`` or
:mod:`tsmnet.commands.bench`): speed and memory ratios of the temporal shift and of
ResNetTSM against a copy, the same ResNet without shift and MMAction2 1.2.0's ResNetTSM,
measured side by side in one run; a table, then the JSON report on the last line.
Never collected by pytest (the file is not named ``test_*``).
"""

from __future__ import annotations

import sys

from tsmnet.commands.bench import main

if __name__ == '__main__':
    sys.exit(main())
