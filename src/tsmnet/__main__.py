"""``python -m tsmnet``: the ``tsmnet`` command, also as ``torchrun -m tsmnet train ...``."""

import sys

from .cli import main

sys.exit(main())
