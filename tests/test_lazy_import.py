"""``import tsmnet`` is cheap and lazy: its public names load on first use (PEP 562), type
checkers see them through ``TYPE_CHECKING`` imports, and ``import tsmnet.video`` (a DataLoader
worker's import) pulls no models, mmcv, exporters or ONNX."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tsmnet

INIT = Path(tsmnet.__file__)


def test_every_public_name_resolves_and_is_listed():
    for name in tsmnet.__all__:
        assert getattr(tsmnet, name) is not None, name
    assert sorted(tsmnet.__all__) == sorted([*tsmnet._LAZY, *tsmnet._SUBMODULES, '__version__'])
    assert set(tsmnet.__all__) <= set(dir(tsmnet))
    assert tsmnet.ResNetTSM.__module__ == 'tsmnet.models.resnet_tsm'
    assert tsmnet.export.__module__ == 'tsmnet.deploy.api'
    assert tsmnet.get_weights.__module__ == 'tsmnet.weights.zoo'
    with pytest.raises(AttributeError, match="module 'tsmnet' has no attribute 'ResNetTSN'"):
        tsmnet.ResNetTSN  # noqa: B018


def test_type_checkers_see_the_same_names_from_the_same_modules():
    """The ``if TYPE_CHECKING:`` imports of ``tsmnet/__init__.py`` are the lazy table."""
    tree = ast.parse(INIT.read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and isinstance(n.test, ast.Name) and n.test.id == 'TYPE_CHECKING')
    seen: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names:
            seen[alias.name] = f'.{node.module}' if node.module else alias.name
    submodules = {name for name, where in seen.items() if where == name}
    assert submodules == set(tsmnet._SUBMODULES)
    assert {n: w for n, w in seen.items() if n not in submodules} == tsmnet._LAZY


@pytest.mark.slow  # a new process
def test_import_tsmnet_video_pulls_no_models_mmcv_or_onnx():
    code = textwrap.dedent('''
        import sys
        import tsmnet.video
        heavy = ('mmcv', 'mmengine', 'mmaction', 'tsmnet.deploy', 'tsmnet.models',
                 'tsmnet.registry', 'onnx', 'onnxruntime')
        print([m for m in heavy if m in sys.modules])
    ''')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split('\n')[-2] == '[]'
