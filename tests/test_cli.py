"""The ``tsmnet`` command line fails one way: ``tsmnet COMMAND: error: ...`` on stderr, one
line, exit status 2, no traceback; ``--debug`` shows the traceback. Each command is driven
with a missing file, a bad value and a wrong kind of file, in a fresh process as a user
runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tsmnet
from tsmnet.cli import COMMANDS, main
from tsmnet.commands.errors import CommandError


@pytest.fixture(scope='module')
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp('cli')
    text = d / 'notes.txt'
    text.write_text('not a video, not a checkpoint, not a config\n')
    not_config = d / 'not_a_config.py'
    not_config.write_text('this is not python (\n')
    folder = d / 'folder'
    folder.mkdir()
    return dict(dir=d, text=text, not_config=not_config, folder=folder,
                missing=d / 'missing.pth')


# (command, kind, argv built from the files) for every command: a missing file, a bad value
# and a wrong kind of file
CASES = [
    ('demo', 'bad value', lambda f: ['demo', '--steps', '0']),
    ('demo', 'bad value', lambda f: ['demo', '--depth', '7']),
    ('demo', 'wrong kind', lambda f: ['demo', '--steps', '1', '--out', str(f['text'])]),
    ('models', 'bad value', lambda f: ['models', 'no-such-model-anywhere']),
    ('models', 'wrong kind', lambda f: ['models', '--json', str(f['folder'])]),
    ('info', 'missing file', lambda f: ['info', str(f['missing'])]),
    ('info', 'bad value', lambda f: ['info', '--depth', '7']),
    ('info', 'wrong kind', lambda f: ['info', str(f['not_config'])]),
    ('convert', 'missing file', lambda f: ['convert', str(f['missing']), str(f['dir'] / 'o'),
                                           '--from', 'tsm']),
    ('convert', 'bad value', lambda f: ['convert', str(f['text']), str(f['dir'] / 'o'),
                                        '--from', 'caffe']),
    ('convert', 'wrong kind', lambda f: ['convert', str(f['text']), str(f['dir'] / 'o'),
                                         '--from', 'tsm']),
    ('bench', 'bad value', lambda f: ['bench', '--size', '0']),
    ('bench', 'wrong kind', lambda f: ['bench', '--json', str(f['folder'])]),
    ('stream', 'missing file', lambda f: ['stream', str(f['missing'])]),
    ('stream', 'bad value', lambda f: ['stream', '--frames', '0']),
    ('stream', 'wrong kind', lambda f: ['stream', str(f['text']), '--backbone', 'resnet18',
                                        '--size', '32']),
    ('export', 'missing file', lambda f: ['export', str(f['dir'] / 'm.onnx'), '--backbone',
                                          'resnet18', '--weights', str(f['missing'])]),
    ('export', 'bad value', lambda f: ['export', str(f['dir'] / 'm.onnx'), '--size', '8']),
    ('export', 'wrong kind', lambda f: ['export', str(f['dir'] / 'm.onnx'), '--backbone',
                                        'resnet18', '--format', 'onnx-int8', '--calibration',
                                        str(f['text'])]),
    ('train', 'missing file', lambda f: ['train', str(f['missing'])]),
    ('train', 'bad value', lambda f: ['train', str(f['text'])]),
    ('train', 'wrong kind', lambda f: ['train', str(f['not_config'])]),
    ('test', 'missing file', lambda f: ['test', str(f['not_config']), str(f['missing'])]),
    ('test', 'bad value', lambda f: ['test', str(f['text']), str(f['text'])]),
    ('test', 'wrong kind', lambda f: ['test', str(f['not_config']), str(f['text'])]),
    ('predict', 'missing file', lambda f: ['predict', str(f['missing'])]),
    ('predict', 'bad value', lambda f: ['predict', str(f['text']), '--top', '0']),
    ('predict', 'wrong kind', lambda f: ['predict', str(f['text'])]),
    ('finetune', 'missing file', lambda f: ['finetune', str(f['missing'])]),
    ('finetune', 'bad value', lambda f: ['finetune', str(f['folder']), '--epochs', '0']),
    ('finetune', 'wrong kind', lambda f: ['finetune', str(f['text'])]),
    ('serve', 'missing file', lambda f: ['serve', '--weights', str(f['missing'])]),
    ('serve', 'bad value', lambda f: ['serve', '--max-batch', '0']),
    ('serve', 'wrong kind', lambda f: ['serve', '--weights', str(f['text'])]),
]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'tsmnet', *argv], capture_output=True,
                          text=True, timeout=300)


def test_every_command_is_driven() -> None:
    for kind in ('bad value', 'wrong kind'):
        assert {c for c, k, _ in CASES if k == kind} == set(COMMANDS), kind
    # demo, bench and models read no input file: their missing-file case does not exist
    assert {c for c, k, _ in CASES if k == 'missing file'} == \
        set(COMMANDS) - {'demo', 'bench', 'models'}


@pytest.mark.parametrize('command, kind, argv', CASES,
                         ids=[f'{c}-{k.replace(" ", "-")}-{i}' for i, (c, k, _) in
                              enumerate(CASES)])
def test_one_line_and_exit_2(files, capsys, command: str, kind: str, argv) -> None:
    """In this process (a traceback would fail the test); ``test_in_a_fresh_process`` checks
    the real entry point."""
    try:
        status = main(argv(files))
    except SystemExit as done:  # argparse's usage errors
        status = done.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'tsmnet {command}: error: '), err
    assert len(lines[0]) > len(f'tsmnet {command}: error: ') + 10  # says what was wrong


@pytest.mark.parametrize('command, argv', [
    ('stream', lambda f: ['stream', str(f['text']), '--backbone', 'resnet18', '--size', '32']),
    ('train', lambda f: ['train', str(f['not_config'])]),
    ('convert', lambda f: ['convert', str(f['text']), 'o', '--from', 'caffe']),
])
@pytest.mark.slow  # a new process
def test_in_a_fresh_process(files, command: str, argv) -> None:
    proc = _run(argv(files))
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    # native decoders and mmcv's import warning may write to stderr too: tsmnet's own
    # report is exactly one line, the last
    lines = proc.stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith('tsmnet ')]
    assert len(ours) == 1 and lines[-1] == ours[0], proc.stderr
    assert ours[0].startswith(f'tsmnet {command}: error: '), proc.stderr
    assert 'Traceback' not in proc.stderr


def test_messages_say_what_was_expected(files, capsys) -> None:
    assert main(['stream', str(files['missing'])]) == 2
    assert f"video '{files['missing']}': no such file" in capsys.readouterr().err
    assert main(['convert', str(files['text']), str(files['dir'] / 'o'), '--from', 'tsm']) == 2
    assert f'cannot read checkpoint {files["text"]}: it is truncated, corrupt or not a ' \
        'PyTorch checkpoint' in capsys.readouterr().err
    assert main(['train', str(files['text'])]) == 2
    assert 'CONFIG must be an MMAction2 config (.py)' in capsys.readouterr().err
    assert main(['train', str(files['not_config'])]) == 2
    assert f'cannot read {files["not_config"]} as an MMAction2 config: SyntaxError' in \
        capsys.readouterr().err
    assert main(['stream', str(files['text']), '--backbone', 'resnet18', '--size', '32']) == 2
    assert f"video '{files['text']}': cannot be opened as a video" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(['info', '--depth', '7'])
    assert info.value.code == 2
    assert "invalid choice: 7 (choose from 18, 34, 50, 101, 152)" in capsys.readouterr().err


@pytest.mark.slow  # a new process
def test_debug_shows_the_traceback(files) -> None:
    proc = _run(['--debug', 'stream', str(files['missing'])])
    assert proc.returncode != 0
    assert 'Traceback' in proc.stderr and 'no such file' in proc.stderr, proc.stderr


def test_debug_after_the_command_raises(files) -> None:
    with pytest.raises(CommandError, match='no such file'):
        main(['stream', str(files['missing']), '--debug'])


@pytest.mark.slow  # a new process
def test_python_dash_m_is_the_command() -> None:
    proc = _run(['--help'])
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout
    assert tsmnet.__version__
