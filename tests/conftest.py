"""Shared fixtures: the device under test and MMAction2's own classes for parity."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

# Without a GPU, the Triton shift kernels run on CPU tensors through Triton's interpreter
# (tests/shift/test_triton_backend.py). Triton reads the switch when a kernel is defined, so
# it is set before anything imports tsmnet; the dispatcher never picks Triton for CPU tensors
# unless forced, so the other tests run as without it.
if os.environ.get('TSMNET_TEST_DEVICE', 'cpu') == 'cpu':
    os.environ.setdefault('TRITON_INTERPRET', '1')


def _inductor_cache_dir() -> str:
    """A compile cache of the suite's own per torch version and instruction-set override.

    Inductor's cache keys do not include ``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA``: a
    kernel built under AVX-512 is reused by a rerun under ``ATEN_CPU_CAPABILITY=default`` and
    fails to build there (``'at::vec' has not been declared``) or gives other numbers. Inductor
    reads ``TORCHINDUCTOR_CACHE_DIR`` when it compiles, so setting it here, before any test
    runs, is in time.
    """
    isa = '-'.join(os.environ.get(var) or 'native'
                   for var in ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA'))
    return os.path.join(tempfile.gettempdir(), f'tsmnet_tests_inductor_uid{os.getuid()}',
                        f'torch-{torch.__version__}-{isa}')


os.environ.setdefault('TORCHINDUCTOR_CACHE_DIR', _inductor_cache_dir())

from mmengine.registry import DefaultScope  # noqa: E402

from tsmnet.mmaction_compat import import_mmaction_models, mmaction_available  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as synthetic_video

import quick_tier  # noqa: E402
from state_dicts import torchvision_shapes  # noqa: E402

quick_tier.install()


@pytest.fixture(scope='session')
def device() -> torch.device:
    """The device from ``TSMNET_TEST_DEVICE`` (default cpu)."""
    return torch.device(os.environ.get('TSMNET_TEST_DEVICE', 'cpu'))


@pytest.fixture(scope='session')
def mmaction_models():
    """``mmaction.models`` of MMAction2 1.2.0 (skipped where MMAction2 is not installed)."""
    if not mmaction_available():
        pytest.skip('MMAction2 is not installed (pip install -e ".[mmaction]")')
    return import_mmaction_models()


@pytest.fixture(scope='session')
def mmaction_tsm(mmaction_models):
    """MMAction2's ``mmaction.models.backbones.resnet_tsm`` module (its TemporalShift...)."""
    import importlib

    return importlib.import_module('mmaction.models.backbones.resnet_tsm')


@pytest.fixture(scope='session')
def shapes() -> dict[str, dict[str, list[int]]]:
    """torchvision's real state-dict keys and shapes of resnet18..152, by model name."""
    return torchvision_shapes()


@pytest.fixture(scope='session', autouse=True)
def _native_kernels() -> None:
    """Build (or load) the native shift kernels before the first test: loading runs ninja, a
    process, which a quick-tier test may not start itself."""
    from tsmnet.shift import native

    native.kernels()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """MMEngine's current default scope is the last one created in the process: a test that
    builds a Runner or calls ``init_default_scope`` would change what later tests build."""
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)


# Tests whose bounds depend on floating-point rounding (layouts, dtypes, compile, the fused
# conv, parity with MMAction2): the README's test lines rerun them (`-m numerics`) under
# ATEN_CPU_CAPABILITY=default and oneDNN/ATen AVX2, so a bound that holds on one instruction
# set only is caught on any machine.
NUMERICS = ('tests/shift/test_fast_paths.py', 'tests/shift/test_fused_conv.py',
            'tests/shift/test_compiled_fused.py', 'tests/shift/test_gradients.py',
            'tests/test_numerics.py', 'tests/models/test_resnet_tsm.py',
            'tests/models/test_mobilenet_v2_tsm.py', 'tests/models/test_recognizer.py')


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(NUMERICS):
            item.add_marker(pytest.mark.numerics)
        # @pytest.mark.quick_only('id', ...): the other cases of a parametrized test are slow
        quick = item.get_closest_marker('quick_only')
        if quick is not None and item.callspec.id not in quick.args:
            item.add_marker(pytest.mark.slow)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test not marked ``slow`` may not start a process, compile with inductor or export
    (tests/quick_tier.py): the quick tier stays quick because this fails it otherwise."""
    before = quick_tier.watch()
    try:
        result = yield
    finally:
        heavy = quick_tier.verdict(before)
    if heavy and item.get_closest_marker('slow') is None:
        pytest.fail(f'{item.nodeid} is not marked slow but it {"; ".join(heavy)}: mark it '
                    '@pytest.mark.slow or make it light', pytrace=False)
    return result
