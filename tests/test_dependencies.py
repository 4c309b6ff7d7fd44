"""Dependencies run one way (commands -> library; models -> checkpoint loading -> key mapping),
with no import inside a function to dodge a cycle, and one table of architectures."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tsmnet
from tsmnet.archs import RESNET_ARCHS, RESNET_DEPTHS, depth_of, resnet_arch
from tsmnet.cli import build_parser

SRC = Path(tsmnet.__file__).parent
# module -> the tsmnet modules it must not import (directly)
LAYERS = {
    'archs.py': {'models', 'checkpoint', 'keymap', 'conversion', 'commands'},
    'keymap/common.py': {'models', 'checkpoint', 'conversion', 'commands'},
    'keymap/resnet.py': {'models', 'checkpoint', 'conversion', 'commands'},
    'checkpoint.py': {'models', 'conversion', 'commands'},
    'models/resnet.py': {'conversion', 'commands'},
    'models/resnet_tsm.py': {'conversion', 'commands'},
    'conversion.py': {'commands'},
    'fileio.py': {'models', 'checkpoint', 'keymap', 'conversion', 'commands'},
    'mmaction_compat.py': {'models', 'checkpoint', 'keymap', 'conversion', 'commands'},
}


def _tsmnet_imports(path: Path) -> tuple[set[str], list[str]]:
    """The tsmnet modules ``path`` imports, and those it imports inside a function."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(SRC).parent.parts
    top: set[str] = set()
    nested: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = list(package[:len(package) - node.level + 1])
            name = '.'.join(base + ([node.module] if node.module else []))
        elif node.module and node.module.split('.')[0] == 'tsmnet':
            name = node.module.partition('.')[2]
        else:
            continue
        top.add(name.split('.')[0] if name else '')
        if node.col_offset > 0:
            nested.append(f'{path.name}:{node.lineno} imports {name or "tsmnet"}')
    return top, nested


@pytest.mark.parametrize('module', sorted(LAYERS))
def test_imports_run_one_way(module: str) -> None:
    imported, nested = _tsmnet_imports(SRC / module)
    assert not imported & LAYERS[module], f'{module} imports {imported & LAYERS[module]}'
    assert not nested, nested  # no import inside a function to dodge a cycle


def test_one_table_of_architectures() -> None:
    assert RESNET_DEPTHS == (18, 34, 50, 101, 152)
    for depth, (block, stage_blocks) in tsmnet.ResNet.arch_settings.items():
        arch = resnet_arch(depth)
        assert stage_blocks == arch.stage_blocks
        assert block.expansion == arch.expansion
        assert depth_of(arch.block, stage_blocks) == depth
    assert depth_of('basic', (3, 4)) == 34 and depth_of('bottleneck', (3, 4, 6)) == 50
    assert depth_of('basic', (9,)) is None
    with pytest.raises(ValueError, match=r'depth must be one of \[18, 34, 50, 101, 152\], got 7'):
        resnet_arch(7)


def test_every_depth_option_reads_the_table() -> None:
    subparsers = next(a for a in build_parser()._actions if a.dest == 'command')
    seen = 0
    for name, parser in subparsers.choices.items():
        for action in parser._actions:
            if action.dest == 'depth':
                assert tuple(action.choices) == RESNET_DEPTHS, name
                seen += 1
    assert seen == 6  # demo, info, convert, bench, stream, finetune
    assert set(RESNET_ARCHS) == set(tsmnet.ResNet.arch_settings)
