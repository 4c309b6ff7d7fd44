"""Run Python code in a fresh process where ``import mmaction.models`` works, before (and
without) importing tsmnet::

    python tests/mmaction_launch.py -c CODE [ARGS...]

The stand-in for the module the mmaction2 1.2.0 wheel lacks comes from
:mod:`tsmnet.mmaction_compat`, loaded by file path. Test-only: users run ``tsmnet train`` /
``tsmnet test``, which apply it themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from mmaction_standin import load_compat_without_tsmnet  # noqa: E402


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != '-c':
        raise SystemExit('usage: mmaction_launch.py -c CODE [ARGS...]')
    load_compat_without_tsmnet().install_drn_standin()
    code = sys.argv[2]
    sys.argv = ['-c', *sys.argv[3:]]
    exec(compile(code, '<mmaction_launch -c>', 'exec'), {'__name__': '__main__'})


if __name__ == '__main__':
    main()
