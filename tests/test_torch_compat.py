"""Private PyTorch names: all in ``tsmnet/_torch_compat.py``, present on this torch, and each
with a working fallback where a release drops it."""

from __future__ import annotations

import ast
import importlib.util
import logging
from pathlib import Path

import pytest
import torch
from torch.autograd import forward_ad

import tsmnet
from tsmnet import _torch_compat

SRC = Path(tsmnet.__file__).parent
COMPAT = SRC / '_torch_compat.py'


def _private(name: str) -> bool:
    return name.startswith('_') and not (name.startswith('__') and name.endswith('__'))


def private_torch_names(source: str) -> list[str]:
    """``line: name`` of each private torch name in ``source``: ``import torch._x``, ``from
    torch._x import ...``, ``from torch import _x``, and ``_x`` read from ``torch`` or from a
    name bound to a torch module or object by an import (``from torch.autograd import
    forward_ad``; ``forward_ad._current_level``)."""
    tree = ast.parse(source)
    torch_names: set[str] = set()  # local names bound to torch things by imports
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == 'torch' or alias.name.startswith('torch.'):
                    if any(_private(part) for part in alias.name.split('.')):
                        found.append(f'{node.lineno}: import {alias.name}')
                    torch_names.add(alias.asname or alias.name.split('.')[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == 'torch' or node.module.startswith('torch.')):
            if any(_private(part) for part in node.module.split('.')):
                found.append(f'{node.lineno}: from {node.module} import ...')
            for alias in node.names:
                if _private(alias.name):
                    found.append(f'{node.lineno}: from {node.module} import {alias.name}')
                torch_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in torch_names:
                found.append(f'{node.lineno}: {ast.unparse(node)}')
    return found


@pytest.mark.parametrize('source, expected', [
    ('import torch\ntorch._C._is_tracing()', ['2: torch._C._is_tracing', '2: torch._C']),
    ('from torch._inductor import lowering', ['1: from torch._inductor import ...']),
    ('import torch._dynamo', ['1: import torch._dynamo']),
    ('from torch import _C', ['1: from torch import _C']),
    ('from torch.autograd import forward_ad\nforward_ad._current_level',
     ['2: forward_ad._current_level']),
    ('import torch.nn.modules.module as m\nm._global_forward_hooks',
     ['2: m._global_forward_hooks']),
    ('import torch\ntorch.__version__, torch.jit.is_tracing()', []),
    ('x = object()\nx._private', []),
])
def test_the_checker_finds_private_torch_names(source, expected):
    assert sorted(private_torch_names(source)) == sorted(expected)


def test_no_private_torch_name_outside_the_compat_module():
    found = {path.relative_to(SRC).as_posix(): names for path in sorted(SRC.rglob('*.py'))
             if path != COMPAT and (names := private_torch_names(path.read_text()))}
    assert not found, f'private torch names outside tsmnet/_torch_compat.py: {found}'


def test_every_private_name_is_present_on_this_torch():
    assert torch.__version__.split('+')[0] in _torch_compat.CHECKED_ON, (
        f'torch {torch.__version__}: check the names of tsmnet/_torch_compat.py on it and add '
        'it to CHECKED_ON')
    assert _torch_compat.missing_names() == []
    assert _torch_compat.apply_positional is _torch_compat._apply_positional


def test_the_bound_functions_answer_as_torch_does():
    assert not _torch_compat.functorch_transforms_active()
    assert torch.func.vmap(lambda x: torch.tensor(
        _torch_compat.functorch_transforms_active()) + x)(torch.zeros(2)).tolist() == [1, 1]
    assert not _torch_compat.is_tracing()
    assert not _torch_compat.forward_ad_active()
    with forward_ad.dual_level():
        assert _torch_compat.forward_ad_active()
    assert not _torch_compat.torch_function_mode_enabled()
    with torch.overrides.TorchFunctionMode():
        assert _torch_compat.torch_function_mode_enabled()
    assert not _torch_compat.global_module_hooks_set()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert _torch_compat.global_module_hooks_set()
        assert _torch_compat.global_forward_hooks_set()
    finally:
        handle.remove()
    conv = torch.nn.Conv2d(1, 1, 1)
    assert not _torch_compat.module_hooks_set(conv)
    conv.register_full_backward_hook(lambda *a: None)
    assert _torch_compat.module_hooks_set(conv) and not _torch_compat.forward_hooks_set(conv)


def _fresh_compat():
    """A new copy of the compat module, run against torch as it is now."""
    spec = importlib.util.spec_from_file_location('tsmnet_compat_copy', COMPAT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_torch_without_the_names_gets_the_general_path_and_a_warning(monkeypatch, caplog):
    for name in ('_are_functorch_transforms_active', '_is_tracing',
                 '_is_torch_function_mode_enabled'):
        monkeypatch.delattr(torch._C, name)
    monkeypatch.delattr(forward_ad, '_current_level')
    monkeypatch.delattr(torch.nn.modules.module, '_global_forward_hooks')
    with caplog.at_level(logging.WARNING, logger='tsmnet_compat_copy'):
        compat = _fresh_compat()
    assert set(compat.missing_names()) == {
        'torch._C._are_functorch_transforms_active', 'torch._C._is_tracing',
        'torch._C._is_torch_function_mode_enabled', 'torch.autograd.forward_ad._current_level',
        'torch.nn.modules.module._global_forward_hooks'}
    assert 'torch._C._is_tracing' in caplog.text and '2.13.0' in caplog.text
    # the conservative answers: the general, slower path with the same numbers
    assert compat.functorch_transforms_active() and compat.torch_function_mode_enabled()
    assert compat.forward_ad_active() and compat.global_module_hooks_set()
    assert compat.is_tracing is torch.jit.is_tracing


def test_the_build_directory_without_the_private_function(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    expected = _torch_compat.extension_build_directory('tsmnet_probe')
    monkeypatch.delattr(cpp_extension, '_get_build_directory')
    assert _torch_compat.extension_build_directory('tsmnet_probe') == expected
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path))
    assert _torch_compat.extension_build_directory('x') == tmp_path / 'x'
