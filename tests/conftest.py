"""Shared fixtures: the device under test and MMAction2's own classes for parity."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# Without a GPU, the Triton shift kernels run on CPU tensors through Triton's interpreter
# (tests/shift/test_triton_backend.py). Triton reads the switch when a kernel is defined, so
# it is set before anything imports tsmnet; the dispatcher never picks Triton for CPU tensors
# unless forced, so the other tests run as without it.
if os.environ.get('TSMNET_TEST_DEVICE', 'cpu') == 'cpu':
    os.environ.setdefault('TRITON_INTERPRET', '1')

from mmengine.registry import DefaultScope  # noqa: E402

from tsmnet.mmaction_compat import import_mmaction_models, mmaction_available  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as synthetic_video

from state_dicts import torchvision_shapes  # noqa: E402


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


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)
