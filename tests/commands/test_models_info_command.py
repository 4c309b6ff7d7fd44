"""``tsmnet --version``, ``tsmnet models`` and ``tsmnet info NAME|CHECKPOINT``, the old option
spellings, and ``--help`` of every command without importing torch (in fresh processes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import tsmnet
from tsmnet.cli import COMMANDS, main
from tsmnet.weights.zoo import ENTRIES

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
# commands whose module still imports torch (strict xfail: the mark fails as soon as one no
# longer does); none is left
TORCH_AT_IMPORT: set[str] = set()
# the commands that compute (a model, a conversion, timings), each with --threads; models
# lists the zoo, train and test pass every option to MMAction2's scripts
COMPUTING = {'info', 'predict', 'stream', 'export', 'finetune', 'convert', 'bench', 'demo',
             'serve'}


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(['--version'])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f'tsmnet {tsmnet.__version__}'


def test_models_lists_and_filters(capsys):
    assert main(['models']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ['name', 'dataset', 'frames', 'top-1']
    assert len(out) == 1 + len(ENTRIES)
    assert main(['models', 'sthv2', '--json', '-']) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r['name'] for r in rows} == {n for n in ENTRIES if 'sthv2' in n}
    assert all(r['top1'] == ENTRIES[r['name']].top1 for r in rows)


def test_info_of_a_zoo_name(capsys):
    assert main(['info', R50, '--no-flops', '--json', '-']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['zoo']['top1'] == ENTRIES[R50].top1 and info['num_classes'] == 400
    assert info['architecture'] == tsmnet.create_model(R50).architecture()
    assert info['backbone']['architecture']['depth'] == 50


def test_info_of_a_checkpoint(tmp_path, capsys):
    model = tsmnet.create_model(R50, depth=18, num_segments=4, num_classes=2,
                                shift_mode='causal')
    tsmnet.save(model, tmp_path / 'ft.pth', classes=['left', 'right'])
    assert main(['info', str(tmp_path / 'ft.pth'), '--no-flops']) == 0
    text = capsys.readouterr().out
    assert 'ResNetTSM (depth=18), shift causal' in text and 'T=4' in text
    assert 'classes: left, right' in text and '2 classes' in text


def test_old_spelling_still_works_and_says_so(tmp_path, capsys):
    """``export --checkpoint`` is ``--weights`` now: the old spelling works, with a note."""
    backbone = tsmnet.ResNetTSM(18, num_segments=2, shift_mode='causal', pretrained=None)
    torch.save(backbone.state_dict(), tmp_path / 'b.pth')
    assert main(['export', str(tmp_path / 'x.onnx'), '--backbone', 'resnet18', '--checkpoint',
                 str(tmp_path / 'nope.pth')]) == 2
    err = capsys.readouterr().err
    assert '--checkpoint is deprecated; use --weights' in err
    assert 'nope.pth' in err


@pytest.mark.slow  # a fresh process per command
@pytest.mark.parametrize('command', [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason='imports torch at module level'))
    if c in TORCH_AT_IMPORT else c for c in (None, *COMMANDS)])
def test_help_does_not_import_torch(command):
    argv = ['--help'] if command is None else [command, '--help']
    code = (f'import sys\nfrom tsmnet.cli import main\ntry:\n    main({argv!r})\n'
            'except SystemExit as e:\n    assert e.code == 0, e.code\n'
            'assert "torch" not in sys.modules, "torch imported"\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'usage: tsmnet' in proc.stdout


def test_help_is_plain_words():
    """No reStructuredText markup in any command's help."""
    from tsmnet.cli import build_parser, plain_words

    assert plain_words(':func:`~tsmnet.models.saving.load` and ``--size``\nExamples::\n') == \
        'load and --size\nExamples:\n'
    subparsers = next(a for a in build_parser()._actions if a.dest == 'command')
    for name, parser in subparsers.choices.items():
        text = parser.format_help()
        assert '``' not in text and ':func:' not in text and '::\n' not in text, name


def test_every_command_that_computes_has_threads():
    from tsmnet.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == 'command')
    assert set(COMMANDS) - COMPUTING == {'models', 'train', 'test'}
    for name in COMPUTING:
        options = {o for a in subparsers.choices[name]._actions for o in a.option_strings}
        assert '--threads' in options, name
