"""Atomic writes (tsmnet.fileio): a failed write leaves the previous file and no partial one,
for every file tsmnet writes (converted checkpoints, bench JSON, stream JSON, demo results)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from tsmnet import fileio
from tsmnet.cli import main


class _FullDisk:
    """A file object whose writes fail with ENOSPC after ``budget`` bytes (a full disk)."""

    def __init__(self, real, budget: int) -> None:
        self.real, self.budget = real, budget

    def write(self, data) -> int:
        if len(data) > self.budget:
            self.real.write(data[:self.budget])  # what a full disk lets through
            self.budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.budget -= len(data)
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.real.close()


@pytest.fixture
def full_disk(monkeypatch):
    """Every file opened by tsmnet.fileio fills the disk after 16 bytes."""
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        return _FullDisk(real_fdopen(fd, *args, **kwargs), budget=16)

    monkeypatch.setattr(fileio.os, 'fdopen', fdopen)


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / 'sub' / 'out.json'
    fileio.write_text(path, 'one')
    fileio.write_text(path, 'two')
    assert path.read_text() == 'two' and _only(path.parent) == ['out.json']
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize('write', [
    lambda p: fileio.write_text(p, 'new content, longer than the disk allows'),
    lambda p: fileio.write_bytes(p, b'new content, longer than the disk allows'),
    lambda p: fileio.save_torch({'w': torch.zeros(100)}, p),
], ids=['text', 'bytes', 'torch'])
def test_full_disk_keeps_the_old_file(tmp_path: Path, full_disk, write) -> None:
    path = tmp_path / 'out.pth'
    path.write_text('the old file')
    with pytest.raises(fileio.WriteError, match=r'cannot write .*out.pth: No space left on '
                       r'device; nothing was written there') as info:
        write(path)
    assert info.value.errno == errno.ENOSPC
    assert '\n' not in str(info.value)
    assert path.read_text() == 'the old file'
    assert _only(tmp_path) == ['out.pth']  # no partial temporary file left


def test_interrupt_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / 'out.txt'
    path.write_text('the old file')
    with pytest.raises(KeyboardInterrupt), fileio.atomic_write(path, 'w') as f:
        f.write('half of the new')
        raise KeyboardInterrupt
    assert path.read_text() == 'the old file' and _only(tmp_path) == ['out.txt']


def test_a_failed_onnx_export_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    """``TSMStream.export_onnx`` used to leave whatever the exporter had written when it
    failed half-way; it now writes beside the file and renames."""
    from tsmnet import ResNetTSM, TSMStream

    def half_then_fail(model, args, f, **kwargs) -> None:
        Path(f).write_bytes(b'half an onnx file')
        raise RuntimeError('the exporter failed')

    path = tmp_path / 'step.onnx'
    path.write_bytes(b'the old export')
    stream = TSMStream(ResNetTSM(18, num_segments=4, shift_mode='causal', pretrained=None))
    monkeypatch.setattr(torch.onnx, 'export', half_then_fail)
    with pytest.raises(RuntimeError, match='the exporter failed'):
        stream.export_onnx(path, torch.zeros(1, 3, 32, 32))
    assert path.read_bytes() == b'the old export' and _only(tmp_path) == ['step.onnx']


def test_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(fileio.WriteError, match=r'cannot write /proc/tsmnet-nope/x.json'):
        fileio.write_text('/proc/tsmnet-nope/x.json', '{}')


def test_convert_on_a_full_disk(tmp_path: Path, full_disk, capsys) -> None:
    """``tsmnet convert`` used to leave a truncated file where a good one stood."""
    from tsmnet import ResNetTSM

    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({f'backbone.{k}': v for k, v in
                ResNetTSM(18, num_segments=8, pretrained=None).state_dict().items()}, src)
    dst.write_bytes(b'a good checkpoint')
    assert main(['convert', str(src), str(dst), '--from', 'mmaction']) == 2
    err = capsys.readouterr().err
    assert err.startswith('tsmnet convert: error: cannot write ') and err.count('\n') == 1
    assert 'No space left on device' in err
    assert dst.read_bytes() == b'a good checkpoint'
    assert _only(tmp_path) == ['dst.pth', 'src.pth']


def test_stream_json_on_a_full_disk(tmp_path: Path, full_disk, capsys) -> None:
    out = tmp_path / 'frames.json'
    out.write_text('{"old": true}')
    assert main(['stream', '--backbone', 'resnet18', '--size', '32', '--frames', '2', '--quiet',
                 '--json', str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('tsmnet stream: error: cannot write ') and err.count('\n') == 1
    assert out.read_text() == '{"old": true}' and _only(tmp_path) == ['frames.json']
