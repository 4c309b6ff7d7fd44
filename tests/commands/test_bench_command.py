"""``tsmnet bench`` runs every figure and reports each as a ratio with its quartiles.

Only the shape of the report is checked: timings are measured by the benchmark, never by tests.
"""

from __future__ import annotations

import argparse
import json

from tsmnet.commands.bench import add_arguments, run_suite, table
from tsmnet.shift import native


def test_every_figure_is_reported_with_its_spread(capsys) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(['--depth', '18', '--size', '32', '--num-segments', '4',
                              '--batch', '1', '--repeats', '4', '--threads', '1'])
    report = run_suite(args)
    json.dumps(report)  # the report is JSON as it stands
    for row in report['shift']:
        for key in ('fwd', 'fwd_bwd'):
            q1, q3 = row[f'{key}_spread']
            assert 0 < q1 <= row[f'{key}_ratio'] <= q3
    for fig in ('infer', 'train'):
        q1, q3 = report[fig]['spread']['tsm / no_shift']
        assert 0 < q1 <= report[fig]['tsm / no_shift'] <= q3
        assert set(report[fig]['times_s']) >= {'tsm', 'no_shift'}
    assert 0 < report['infer']['tsm_fused / tsm']
    if native.kernels() is not None:  # the PyTorch ops alone, timed beside the kernels
        assert report['config']['native_kernels'] == 'in use on the CPU'
        for row in report['shift']:
            q1, q3 = row['torch_fwd_spread']
            assert 0 < q1 <= row['torch_fwd_ratio'] <= q3
        for fig in ('infer', 'train'):
            assert {'tsm_torch / no_shift', 'tsm / tsm_torch'} <= set(report[fig])
    assert report['memory']['bytes']['tsm'] > 0
    text = table(report)
    assert 'infer: ResNetTSM / no shift' in text and 'q1-q3' in text
