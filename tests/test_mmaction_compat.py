"""tsmnet.mmaction_compat: the stand-in for the module the mmaction2 1.2.0 wheel lacks, applied
only where it is missing, and the paths of MMAction2's own tools."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tsmnet import mmaction_compat
from tsmnet.mmaction_compat import DRN_MODULE, install_drn_standin, mmaction_tool

pytest.importorskip('mmaction')

PROBE = '''
import sys
from pathlib import Path
from tsmnet.mmaction_compat import install_drn_standin
import mmaction
wheel_lacks_it = not (Path(mmaction.__file__).parent / 'models' / 'localizers' / 'drn').exists()
assert 'mmaction.models' not in sys.modules  # a bare import tsmnet does not import it
print(wheel_lacks_it, install_drn_standin(), install_drn_standin())
import mmaction.models
print(mmaction.models.ResNetTSM.__module__)
'''


@pytest.mark.slow  # a new process
def test_standin_only_where_missing() -> None:
    proc = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lacks, first, second = proc.stdout.split()[:3]
    # the PyPI wheel lacks it: installed once, then left alone
    assert (lacks, first, second) == ('True', 'True', 'False')
    assert proc.stdout.split()[3] == 'mmaction.models.backbones.resnet_tsm'  # it imports


def test_standin_is_never_built(mmaction_models) -> None:
    assert install_drn_standin() is False  # the fixture put it in place already
    standin = sys.modules[f'{DRN_MODULE}.drn'].DRN
    if standin is mmaction_compat._DRNStandIn:
        with pytest.raises(RuntimeError, match='lacks it'):
            standin()


def test_tools_of_the_installed_wheel() -> None:
    """The paths are MMAction2's own scripts, inside the installed package, each the one
    asked for (train builds a Runner to train, test one to test)."""
    package = Path(importlib.util.find_spec('mmaction').origin).parent
    for name, says in (('train', "description='Train a action recognizer'"),
                       ('test', "description='MMAction2 test (and eval) a model'")):
        path = mmaction_tool(name)
        assert path == package / '.mim' / 'tools' / f'{name}.py'
        text = path.read_text()
        assert says in text and 'Runner.from_cfg(cfg)' in text
    with pytest.raises(ValueError, match="name must be 'train' or 'test', got 'dist_train'"):
        mmaction_tool('dist_train')
