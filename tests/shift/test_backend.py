"""Every backend module satisfies the backend interface (tsmnet.shift.backend), with the
signatures it declares; a backend that never refuses in place has ``shift_``."""

from __future__ import annotations

import inspect

import pytest
import torch

from tsmnet.shift import ShiftSpec
from tsmnet.shift.backend import InPlaceShiftBackend, ShiftBackend
from tsmnet.shift.dispatch import BACKENDS


def _declared(protocol: type, name: str) -> list[str]:
    return list(inspect.signature(getattr(protocol, name)).parameters)[1:]  # without self


@pytest.mark.parametrize('name', sorted(BACKENDS))
def test_backend_module_satisfies_the_protocol(name: str) -> None:
    module = BACKENDS[name]
    assert isinstance(module, ShiftBackend), f'{name} lacks part of ShiftBackend'
    assert module.NAME == name
    protocol = InPlaceShiftBackend if hasattr(module, 'shift_') else ShiftBackend
    assert isinstance(module, protocol)
    for member in ('status', 'reasons', 'copy', 'traced') + (
            ('shift_',) if protocol is InPlaceShiftBackend else ()):
        got = list(inspect.signature(getattr(module, member)).parameters)
        assert got == _declared(protocol, member), f'{name}.{member}{got}'


@pytest.mark.parametrize('name', sorted(BACKENDS))
def test_a_backend_without_shift_in_place_refuses_in_place(name: str) -> None:
    module = BACKENDS[name]
    if isinstance(module, InPlaceShiftBackend) or module.status():
        return  # has shift_, or is unavailable here (its status says why)
    x = torch.randn(8, 16, 2, 2)
    assert module.reasons(x, True), f'{name} has no shift_ but accepts in place'
    assert not module.reasons(x, False)
    assert module.copy(x, ShiftSpec.of(4, 2)).shape == x.shape
