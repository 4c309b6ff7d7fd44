"""The native build never hangs and never blocks silently: a stale lock left by a killed
build, four processes first-shifting at once on an empty cache, a cache folder that cannot be
written, no compiler, no ninja, a build lock held too long. Each case runs in fresh
processes under a timeout and must end with the kernels, or with the PyTorch ops and one log
line saying why; the numbers are checked either way."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsmnet.shift import native

pytestmark = pytest.mark.slow  # every test builds or loads the kernels in a new process

# Shifts frames, checks them against the loop, prints whether the kernels ran and why not.
PROBE = '''
import torch
from tsmnet import temporal_shift
from tsmnet.shift import native, temporal_shift_reference

x = torch.randn(8, 16, 3, 3)
assert torch.equal(temporal_shift(x, 4), temporal_shift_reference(x, 4))
print('RESULT', native.kernels() is not None, native.why_not() or '-')
'''


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != native.ENV_SWITCH}
    env.update(extra)
    return env


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-c', PROBE], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[bool, str, str]:
    """(kernels used, why not, whole output) of a probe, failing if it does not end."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f'the probe hung for more than {timeout} s:\n{out}')
    assert proc.returncode == 0, out
    line = next(row for row in out.splitlines() if row.startswith('RESULT'))
    _, used, why = line.split(' ', 2)
    return used == 'True', why, out


def _unavailable_lines(out: str) -> list[str]:
    return [row for row in out.splitlines() if 'native shift kernels unavailable' in row]


@pytest.fixture(scope='module')
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('torch_extensions')


@pytest.mark.slow
def test_four_processes_at_once_on_an_empty_cache_build_once(cache):
    if native.kernels() is None:
        pytest.skip(f'the kernels cannot be built here: {native.why_not()}')
    env = _env(TORCH_EXTENSIONS_DIR=str(cache))
    start = time.monotonic()
    procs = [_start(env) for _ in range(4)]
    results = [_finish(p, timeout=600) for p in procs]
    assert all(used for used, _, _ in results), [out for _, _, out in results]
    building = sum(out.count('building the native shift kernels') for _, _, out in results)
    assert building == 1, 'one process builds, the others wait for it and load its build'
    assert time.monotonic() - start < 600


@pytest.mark.slow
def test_a_stale_lock_left_by_a_killed_build_is_removed(cache):
    """Runs after the build above: torch's lock file planted as a killed build leaves it."""
    if native.kernels() is None:
        pytest.skip(f'the kernels cannot be built here: {native.why_not()}')
    folder = next(cache.glob(f'*/{native.build_name()}'), None) or cache / native.build_name()
    assert (folder / f'{native.build_name()}.so').is_file(), sorted(cache.rglob('*'))
    (folder / 'lock').write_text('')
    used, _, out = _finish(_start(_env(TORCH_EXTENSIONS_DIR=str(cache))), timeout=60)
    assert used, out
    assert 'removed a stale build lock left by a killed build' in out
    assert not (folder / 'lock').exists()


@pytest.mark.slow
def test_another_checkout_of_the_same_sources_reuses_the_build(cache, tmp_path):
    """Runs after the build above: a second copy of tsmnet (another venv, a git worktree)
    loads the same build; ninja would rebuild if it compiled from each copy's own path."""
    if native.kernels() is None:
        pytest.skip(f'the kernels cannot be built here: {native.why_not()}')
    import shutil

    import tsmnet
    folder = next(cache.glob(f'*/{native.build_name()}'), None) or cache / native.build_name()
    library = folder / f'{native.build_name()}.so'
    built = library.stat().st_mtime_ns
    shutil.copytree(Path(tsmnet.__file__).parent, tmp_path / 'tsmnet',
                    ignore=shutil.ignore_patterns('__pycache__'))
    env = _env(TORCH_EXTENSIONS_DIR=str(cache), PYTHONPATH=str(tmp_path))
    used, _, out = _finish(_start(env), timeout=120)
    assert used, out
    assert 'building the native shift kernels' not in out
    assert library.stat().st_mtime_ns == built, 'the second checkout rebuilt the kernels'


def test_a_cache_that_cannot_be_written_falls_back_at_once():
    # root ignores file modes: a folder under /proc cannot be created even by root
    start = time.monotonic()
    used, why, out = _finish(_start(_env(TORCH_EXTENSIONS_DIR='/proc/tsmnet-no-cache')),
                             timeout=60)
    assert not used and 'tsmnet-no-cache' in why, out
    assert len(_unavailable_lines(out)) == 1, out
    assert time.monotonic() - start < 60


def test_no_compiler_falls_back_at_once(tmp_path):
    used, why, out = _finish(_start(_env(TORCH_EXTENSIONS_DIR=str(tmp_path),
                                         CXX='/nonexistent/c++')), timeout=60)
    assert not used and why == "no C++ compiler ('/nonexistent/c++' not found; set CXX)", out
    assert len(_unavailable_lines(out)) == 1, out


def test_no_ninja_falls_back_at_once(tmp_path):
    used, why, out = _finish(_start(_env(TORCH_EXTENSIONS_DIR=str(tmp_path),
                                         PATH=str(tmp_path))), timeout=60)
    assert not used and why == 'ninja is not installed (pip install ninja)', out
    assert len(_unavailable_lines(out)) == 1, out


def test_a_build_lock_held_too_long_falls_back(tmp_path):
    """A live process holding the build lock (a build that takes forever) makes the others
    give up after TSMNET_NATIVE_BUILD_TIMEOUT seconds instead of waiting with it."""
    folder = tmp_path / 'py_any' / native.build_name()
    env = _env(TORCH_EXTENSIONS_DIR=str(tmp_path / 'py_any'),
               **{native.ENV_TIMEOUT: '2'})
    folder.mkdir(parents=True)
    with open(folder / 'tsmnet.flock', 'w') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        start = time.monotonic()
        used, why, out = _finish(_start(env), timeout=60)
    assert not used and why.startswith('another process held the build lock'), out
    assert len(_unavailable_lines(out)) == 1, out
    assert time.monotonic() - start < 30
