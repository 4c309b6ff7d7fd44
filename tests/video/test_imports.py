"""``tsmnet.video`` stays light: a spawned DataLoader worker imports it, so it imports no
export code, no mmcv/MMEngine/MMAction2 and nothing of tsmnet's outside itself (the
top-level ``tsmnet`` package's own imports are its ``__init__``'s business)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import tsmnet.video

VIDEO = Path(tsmnet.video.__file__).parent
# av: the optional decoder, imported guarded; cv2: the optional resize, on first use
ALLOWED = {'numpy', 'torch', 'av', 'cv2'}


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split('.')[0])
    return found


def test_video_package_imports_only_numpy_torch_and_pyav():
    files = sorted(VIDEO.glob('*.py'))
    assert len(files) >= 8
    for path in files:
        outside = _imported(path) - ALLOWED - set(sys.stdlib_module_names)
        assert not outside, f'{path.name} imports {sorted(outside)}'


@pytest.mark.slow
def test_importing_video_leaves_opencv_unloaded():
    """OpenCV (about 0.16 s to import) loads with the first resize, not with the package."""
    import subprocess

    code = ('import sys, numpy as np, tsmnet.video.transforms as t\n'
            'assert "cv2" not in sys.modules\n'
            't.resize(np.zeros((1, 4, 4, 3), np.uint8), 2, 2)\n'
            'print("cv2" in sys.modules)\n')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == 'True'
