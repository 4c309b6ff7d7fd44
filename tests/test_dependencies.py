"""Dependencies run one way, with no import inside a function to dodge a cycle, and one table
of architectures.

commands -> everything; deploy, stream -> models -> weights -> weights.keymap; video is a leaf
(no tsmnet import); everything -> shift -> _torch_compat (PyTorch's private names), which
imports nothing of tsmnet's.
The rules are per package, so a new file in a package is checked without being listed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tsmnet
from tsmnet.archs import RESNET_ARCHS, RESNET_DEPTHS, depth_of, resnet_arch
from tsmnet.cli import build_parser

SRC = Path(tsmnet.__file__).parent
# every top-level unit; '' is the package itself (``import tsmnet``)
EVERYTHING = {'__main__', '_torch_compat', '_version', 'archs', 'benchmark', 'cli', 'commands',
              'data', 'demo', 'engine', 'deploy', 'fileio', 'fuse', 'layers', 'mmaction_compat',
              'models', 'online', 'predictor', 'progress', 'registry', 'serve', 'shift', 'stdout',
              'stream', 'train', 'video', 'weights', ''}
BELOW_MODELS = {'_torch_compat', '_version', 'archs', 'fileio', 'layers', 'shift', 'weights'}
# unit (a package or module, dotted under tsmnet; the longest one that holds a file is its
# unit) -> the units its files may import (a prefix allows everything under it), and those
# excepted from that
RULES: dict[str, tuple[set[str], set[str]]] = {
    '': (EVERYTHING - {'__main__', 'benchmark', 'cli', 'commands', 'demo', 'train', 'serve'},
         set()),
    '__main__': ({'cli'}, set()),
    'cli': ({'commands', '_version'}, set()),
    'commands': (EVERYTHING - {'__main__', 'cli'}, set()),
    'demo': (EVERYTHING - {'__main__', 'benchmark', 'cli', 'commands', 'deploy'}, set()),
    'deploy': (EVERYTHING - {'__main__', 'benchmark', 'cli', 'commands', 'demo'}, set()),
    # the figures of ``tsmnet bench``; the harness times anything and imports only fileio
    'benchmark': (EVERYTHING - {'__main__', 'cli', 'commands', 'demo', 'deploy'},
                  {'weights.conversion'}),
    'benchmark.harness': ({'fileio'}, set()),
    'stream': (BELOW_MODELS | {'models', 'fuse'}, {'weights.conversion'}),
    'registry': (BELOW_MODELS | {'mmaction_compat', 'models'}, {'weights.conversion'}),
    'engine': ({'registry'}, set()),
    'models': (BELOW_MODELS | {'models', 'video'}, {'weights.conversion'}),  # video: TestProtocol
    'fuse': ({'_torch_compat', 'layers', 'shift'}, set()),
    'layers': ({'_torch_compat', 'shift'}, set()),
    # weights: loading, safe unpickling, named weights; the conversion behind ``tsmnet
    # convert`` checks a converted file against the model it is for, so it alone sits above
    # models (nothing below commands imports it)
    'weights': ({'_torch_compat', '_version', 'archs', 'fileio', 'shift', 'video', 'weights'},
                {'weights.conversion'}),
    'weights.conversion': ({'_torch_compat', '_version', 'archs', 'fileio', 'models', 'shift',
                            'weights'}, set()),
    'weights.keymap': ({'archs', 'shift', 'weights.keymap'}, set()),
    # PyTorch's private names, each with its fallback: below everything, importing only torch
    'shift': ({'_torch_compat', 'shift'}, set()),
    '_torch_compat': (set(), set()),
    'video': ({'video'}, set()),
    # training data: imported by every DataLoader worker, so nothing heavy (no models, deploy)
    'data': ({'data', 'video', 'fileio', '_version'}, set()),
    # fine-tuning as a library (``tsmnet finetune`` parses and prints around it)
    'train': ({'train', 'data', 'video', 'models', 'weights', 'fileio', '_torch_compat',
               '_version', 'archs', 'shift'}, {'weights.conversion'}),
    'archs': (set(), set()),
    # tsmnet serve as a library: an app over the models, the stream and video reading; the
    # command builds its predictor (commands -> serve, never back)
    'serve': ({'serve', 'models', 'stream', 'layers', 'video', 'fileio', '_version'}, set()),
    # the one model loader and video predictor of predict, stream and serve (commands build
    # it; serve's app takes it): a library unit, below commands and serve
    'predictor': (EVERYTHING - {'__main__', 'benchmark', 'cli', 'commands', 'demo', 'serve',
                                'train'}, {'weights.conversion'}),
    'fileio': (set(), set()),
    'mmaction_compat': (set(), set()),
    '_version': (set(), set()),
    # what a command shows: progress over items, standard output kept for results; the
    # sliding-window class scores of a live stream (torch only)
    'progress': (set(), set()),
    'stdout': (set(), set()),
    'online': (set(), set()),
}
LAZY_IMPORTS = ('commands',)  # subcommands import the library when they run (a fast --help)
FILES = sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob('*.py'))


def _dotted(path: str) -> str:
    """``weights/keymap/resnet.py`` -> ``weights.keymap.resnet``; ``__init__.py`` -> ``''``."""
    parts = path[:-len('.py')].split('/')
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _unit(path: str) -> str:
    name = _dotted(path)
    return max((u for u in RULES if name == u or name.startswith(f'{u}.')), key=len, default='')


def _tsmnet_imports(path: Path) -> tuple[set[str], list[str]]:
    """The tsmnet modules ``path`` imports (dotted under tsmnet), and those it imports inside a
    function."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(SRC).parent.parts
    found: set[str] = set()
    nested: list[str] = []
    in_functions = {id(n) for f in ast.walk(tree)
                    if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.partition('.')[2] for a in node.names
                     if a.name.split('.')[0] == 'tsmnet']
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = '.'.join(list(package[:len(package) - node.level + 1])
                            + ([node.module] if node.module else []))
            names = [base] if node.module else \
                [f'{base}.{a.name}'.lstrip('.') for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split('.')[0] == 'tsmnet':
            names = [node.module.partition('.')[2]]
            if not names[0]:  # from tsmnet import X: X may be a module (shift) or a name
                names = [a.name if a.name in EVERYTHING else '' for a in node.names]
        else:
            continue
        found.update(names)
        if id(node) in in_functions:
            nested += [f'{path.name}:{node.lineno} imports {n or "tsmnet"}' for n in names]
    return found, nested


def _allowed(name: str, may: set[str], may_not: set[str]) -> bool:
    def under(units: set[str]) -> bool:
        return any(name == u or (u and name.startswith(f'{u}.')) or (u == '' and name == '')
                   for u in units)
    return under(may) and not under(may_not)


@pytest.mark.parametrize('path', FILES)
def test_imports_run_one_way(path: str) -> None:
    unit = _unit(path)
    may, may_not = RULES[unit]
    imported, nested = _tsmnet_imports(SRC / path)
    own = _dotted(path)
    wrong = {n for n in imported if n != own and not _allowed(n, may | {unit}, may_not)}
    assert not wrong, f'{path} ({unit or "tsmnet"}) imports {sorted(wrong)}'
    if not unit.startswith(LAZY_IMPORTS):
        assert not nested, nested  # no import inside a function to dodge a cycle


# video is read with PyAV (tsmnet.video) alone: decord and OpenCV are MMAction2's, not tsmnet's.
# An optional speed-up guarded by ``except ImportError`` (data/augment.py's OpenCV resize, the
# same bits as tsmnet.video.transforms.resize) is allowed; nothing may need them.
FOREIGN_READERS = {'decord', 'cv2'}


def _unguarded_imports(path: Path) -> set[str]:
    """Top-level packages ``path`` imports outside a ``try`` that catches ImportError."""
    tree = ast.parse(path.read_text())
    guarded = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try)
               and any(isinstance(h.type, ast.Name) and h.type.id in ('ImportError',
                                                                     'ModuleNotFoundError')
                       for h in t.handlers)
               for stmt in t.body for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split('.')[0])
    return found


@pytest.mark.parametrize('path', FILES)
def test_no_decord_or_opencv(path: str) -> None:
    used = _unguarded_imports(SRC / path) & FOREIGN_READERS
    assert not used, f'{path} imports {sorted(used)}: read video with tsmnet.video (PyAV)'


def test_the_reader_check_catches_an_import(tmp_path: Path) -> None:
    bad = tmp_path / 'bad.py'
    bad.write_text('import numpy\ndef f():\n    import decord\n')
    assert _unguarded_imports(bad) == {'numpy', 'decord'}
    bad.write_text('try:\n    import cv2\nexcept ImportError:\n    cv2 = None\n')
    assert _unguarded_imports(bad) == set()


def test_every_top_level_unit_has_a_rule() -> None:
    for path in FILES:
        top = path.split('/')[0].removesuffix('.py')
        assert (top if '/' in path or top != '__init__' else '') in RULES, path


def test_the_rules_catch_a_wrong_import() -> None:
    """The checker itself: a keymap that imports a model is refused."""
    may, may_not = RULES[_unit('weights/keymap/new.py')]
    assert not _allowed('models.resnet', may, may_not)
    assert not _allowed('weights.checkpoint', may, may_not)
    assert _allowed('weights.keymap.common', may, may_not)
    may, may_not = RULES[_unit('models/new.py')]
    assert not _allowed('weights.conversion', may, may_not)
    assert not _allowed('deploy.onnx', may, may_not) and not _allowed('stream', may, may_not)
    assert _allowed('weights.checkpoint', may, may_not)
    assert not _allowed('models', *RULES[_unit('weights/zoo.py')])
    assert not _allowed('archs', *RULES[_unit('video/decode.py')])


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


# what command modules share: the one way to fail, the common options, MMAction2's tools
COMMAND_HELPERS = {'commands.errors', 'commands.options', 'commands.tools'}


def _imported_names(path: Path) -> set[str]:
    """``module:name`` of every ``from tsmnet... import name`` in ``path`` (relative ones
    resolved under tsmnet)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            package = path.relative_to(SRC).parent.parts
            module = '.'.join(list(package[:len(package) - node.level + 1])
                              + ([node.module] if node.module else []))
        elif node.module and node.module.split('.')[0] == 'tsmnet':
            module = node.module.partition('.')[2]
        else:
            continue
        found |= {f'{module}:{a.name}' for a in node.names}
    return found


@pytest.mark.parametrize('path', [p for p in FILES if p.startswith('commands/')])
def test_commands_use_the_public_library_and_not_each_other(path: str) -> None:
    """A command is a face on the library: it imports no other command (a shared helper is a
    library function, or one of COMMAND_HELPERS) and no private name (``_x``)."""
    imported, _ = _tsmnet_imports(SRC / path)
    own = _dotted(path)
    others = {n for n in imported if n.startswith('commands.') and n != own
              and n not in COMMAND_HELPERS}
    assert not others, f'{path} imports the commands {sorted(others)}'
    private = {n for n in _imported_names(SRC / path)
               if any(part.startswith('_') and part not in ('__future__', '_version')
                      for part in n.replace(':', '.').split('.'))}
    assert not private, f'{path} imports private names {sorted(private)}'


def test_the_command_check_reads_imports(tmp_path: Path) -> None:
    assert 'commands.options:library_errors' in _imported_names(SRC / 'commands' / 'predict.py')
    fake = tmp_path / 'x.py'
    fake.write_text('from tsmnet.stream import _stages_of\nfrom os import path\n')
    assert _imported_names(fake) == {'stream:_stages_of'}
