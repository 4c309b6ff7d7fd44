"""``tsmnet bench`` runs every figure and reports each as a ratio with its quartiles, under the
JSON keys the docs quote.

Only the report is checked here: the harness that times it is tested against workloads of a
known ratio (tests/benchmark/test_harness.py); speed is measured by the benchmark, never by
tests.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest

from tsmnet.benchmark.suite import BenchConfig, run_suite
from tsmnet.commands.bench import add_arguments, table
from tsmnet.shift import native


def _positive(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def _ratio_within_its_spread(value: float, spread: list[float]) -> bool:
    """A median ratio lies between the first and third quartiles of the same ratios: false
    when a figure is reported beside another figure's spread, or a spread is inverted."""
    q1, q3 = spread
    return _positive(value) and all(map(_positive, spread)) and q1 <= value <= q3


@pytest.mark.slow  # times every figure of a small ResNet-18 (about 10 s of CPU)
def test_every_figure_is_reported_with_its_spread(capsys) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(['--depth', '18', '--size', '32', '--num-segments', '4',
                              '--batch', '1', '--repeats', '4', '--threads', '1'])
    config = BenchConfig.from_options(args)
    assert (config.depth, config.size, config.threads) == (18, 32, 1)
    report = run_suite(config)
    assert json.loads(json.dumps(report)) == report  # the report is JSON as it stands
    assert report['config']['threads'] == 1 and report['config']['frames'] == 4
    assert {r['shape'] for r in report['shift']} >= {'all sites (8)'}  # ResNet-18: 8 blocks
    for row in report['shift']:
        for key in ('fwd', 'fwd_bwd', 'in_place'):
            assert _ratio_within_its_spread(row[f'{key}_ratio'], row[f'{key}_spread']), row
        assert set(row['times_s']) >= {'shift', 'clone', 'in_place_undo', 'shift_fwd_bwd',
                                       'mul_fwd_bwd'}
    for fig in ('infer', 'train'):
        for name, spread in report[fig]['spread'].items():
            assert _ratio_within_its_spread(report[fig][name], spread), (fig, name)
        assert set(report[fig]['times_s']) >= {'tsm', 'no_shift'}
    assert _positive(report['infer']['tsm_fused / tsm'])
    if native.kernels() is not None:  # the PyTorch ops alone, timed beside the kernels
        assert report['config']['native_kernels'] == 'in use on the CPU'
        for row in report['shift']:
            assert _ratio_within_its_spread(row['torch_fwd_ratio'], row['torch_fwd_spread'])
        for fig in ('infer', 'train'):
            assert {'tsm_torch / no_shift', 'tsm / tsm_torch'} <= set(report[fig])
    saved = report['memory']['bytes']
    assert saved['tsm'] > 0
    assert report['memory']['tsm / no_shift'] == saved['tsm'] / saved['no_shift']
    # saved activations are counted, not timed: the same run gives the same bytes
    assert run_suite(BenchConfig.from_options(parser.parse_args(
        ['--depth', '18', '--size', '32', '--num-segments', '4', '--batch', '1',
         '--figures', 'memory'])))['memory']['bytes'] == saved
    text = table(report)
    assert 'infer: ResNetTSM / no shift' in text and 'q1-q3' in text


def test_the_command_names_the_suite_choices():
    """bench names its choices without importing torch (a fast --help); they are the
    suite's."""
    from tsmnet.benchmark.suite import DTYPES, FIGURES
    from tsmnet.commands import bench

    assert bench.DTYPE_NAMES == tuple(DTYPES) and bench.FIGURES == FIGURES
