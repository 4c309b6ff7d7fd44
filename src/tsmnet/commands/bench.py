"""``tsmnet bench``: speed and memory of the shift and of ResNetTSM, as ratios measured side
by side in one run.

Every figure is a ratio of two (or more) candidates timed in the same run, their repeats
interleaved (the order rotates each repeat) so that a machine shared with other work slows
all of them alike; a ratio is the median over repeats of the per-repeat ratio, shown with
its first and third quartiles (how much the machine's noise moves it), and the table also
gives each candidate's median time. The figures:

- ``shift_fwd``: ``temporal_shift(x)`` / ``x.clone()`` (no grad) at the input of every shift
  of the network (one row per distinct shape, and ``all sites``: the whole set of inputs of
  one forward);
- ``in_place``: the in-place shift and its undo (what ResNetTSM's sites run in inference:
  :func:`tsmnet.shift.shifted_in_place`) / ``x.clone()``, the same shapes;
- ``shift_fwd_bwd``: shift forward+backward / ``x.mul(1.0)`` forward+backward, the same shapes;
- ``infer``: ResNetTSM / the same ResNet without shift (``is_shift=False``, same weights),
  and tsmnet / MMAction2 1.2.0's ``ResNetTSM`` (same config and weights); also tsmnet with
  batch norm folded into the convs (:func:`tsmnet.fuse_conv_bn`) / each of those;
- ``train``: one training step (forward, backward of a fixed random output gradient),
  the same pairs;
- ``memory``: bytes of the distinct activation storages that autograd saves during one
  training forward (``torch.autograd.graph.saved_tensors_hooks``; parameters excluded).

Where the shift runs a kernel backend (``native`` on the CPU, ``triton`` on a GPU: see
:mod:`tsmnet.shift`), the shift and model figures also time the same shift and the same
model with the backend forced to the PyTorch ops (``tsmnet.shift.use_backend('torch')``;
``PyTorch ops alone`` rows, ``*_torch`` in the JSON).

MMAction2's class is imported through :mod:`tsmnet.mmaction_compat` (the PyPI wheel of
mmaction2 1.2.0 cannot ``import mmaction.models`` by itself); without MMAction2
the MMAction2 figures are left out and say why. Output: a table, then the JSON object of all
figures on the last line (``--json PATH`` writes it to a file too). Timings on a GPU
synchronise the device around each measurement. The figures are computed by
:mod:`tsmnet.benchmark.suite` and timed by :mod:`tsmnet.benchmark.harness`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..archs import RESNET_DEPTHS
from .errors import CommandError

# the suite's precisions and figures (tsmnet.benchmark.suite.DTYPES, FIGURES; a test keeps
# them equal), named here so that --help imports no torch
DTYPE_NAMES: tuple[str, ...] = ('fp32', 'fp16', 'bf16')
FIGURES: tuple[str, ...] = ('shift', 'infer', 'train', 'memory')

__all__ = ['add_arguments', 'add_parser', 'main', 'run', 'table']


def table(report: dict[str, Any]) -> str:
    """The report as a readable table of ratios (and median times)."""
    from ..benchmark.suite import TARGETS

    c = report['config']
    lines = [f"tsmnet bench: ResNet-{c['depth']}, T={c['num_segments']}, "
             f"{c['frames']}x3x{c['size']}x{c['size']}, {c['dtype']}"
             f"{', channels_last' if c['channels_last'] else ''}, {c['device']} "
             f"({c['machine']}, {c['threads']} threads, load average "
             f"{c['loadavg_before']} -> {c['loadavg_after']}), {c['repeats']} repeats; "
             f"mmaction: {c['mmaction']}",
             '', f"{'figure':<52} {'ratio':>7} {'q1-q3':>13} {'target':>7}"]

    def row(name: str, value: float, target: float | None = None, note: str = '',
            quartiles: list[float] | None = None) -> None:
        t = f'<= {target:g}' if target is not None else ''
        q = f'{quartiles[0]:.3f}-{quartiles[1]:.3f}' if quartiles else ''
        lines.append(f'{name:<52} {value:7.3f} {q:>13} {t:>7}  {note}'.rstrip())

    if 'call_cost' in report:
        r, t = report['call_cost'], report['call_cost']['times_s']
        lines.append(f"{'shift call: fixed cost over its kernel ' + r['shape']:<52} "
                     f"{r['over_kernel_s'] * 1e6:6.1f} us {'':>13} {'<= 5 us':>7}  "
                     f"({r['backend']}: call {t['call'] * 1e6:.1f}, kernel "
                     f"{t['kernel'] * 1e6:.1f}, clone {t['clone'] * 1e6:.1f} us)")
    for r in report.get('shift', []):
        t = r['times_s']
        row(f"shift fwd / clone  {r['shape']}", r['fwd_ratio'], TARGETS['shift_fwd / clone'],
            f"({t['shift'] * 1e6:.0f} vs {t['clone'] * 1e6:.0f} us)", r['fwd_spread'])
    for r in report.get('shift', []):
        if 'torch_fwd_ratio' in r:
            row(f"  PyTorch ops alone  {r['shape']}", r['torch_fwd_ratio'],
                quartiles=r['torch_fwd_spread'])
    for r in report.get('shift', []):
        if 'in_place_ratio' in r:
            t = r['times_s']
            row(f"in-place shift + undo / clone  {r['shape']}", r['in_place_ratio'],
                TARGETS['in_place_undo / clone'],
                f"({t['in_place_undo'] * 1e6:.0f} vs {t['clone'] * 1e6:.0f} us)",
                r['in_place_spread'])
    for r in report.get('shift', []):
        t = r['times_s']
        row(f"shift fwd+bwd / mul fwd+bwd  {r['shape']}", r['fwd_bwd_ratio'],
            TARGETS['shift_fwd_bwd / mul_fwd_bwd'],
            f"({t['shift_fwd_bwd'] * 1e6:.0f} vs {t['mul_fwd_bwd'] * 1e6:.0f} us)",
            r['fwd_bwd_spread'])
    for r in report.get('shift', []):
        if 'torch_fwd_bwd_ratio' in r:
            row(f"  PyTorch ops alone  {r['shape']}", r['torch_fwd_bwd_ratio'],
                quartiles=r['torch_fwd_bwd_spread'])
    for fig in ('infer', 'train'):
        if fig not in report:
            continue
        r, t = report[fig], report[fig]['times_s']
        times = ', '.join(f'{k} {v * 1e3:.0f} ms' for k, v in t.items())
        row(f'{fig}: ResNetTSM / no shift (same weights)', r['tsm / no_shift'],
            TARGETS[f'{fig}: tsm / no_shift'], f'({times})', r['spread']['tsm / no_shift'])
        if 'tsm_torch / no_shift' in r:
            row(f'{fig}:   PyTorch ops alone / no shift', r['tsm_torch / no_shift'],
                quartiles=r['spread']['tsm_torch / no_shift'])
            row(f'{fig}:   native kernels / PyTorch ops alone', r['tsm / tsm_torch'],
                quartiles=r['spread']['tsm / tsm_torch'])
        if 'tsmnet / mmaction' in r:
            row(f'{fig}: tsmnet / MMAction2 ResNetTSM', r['tsmnet / mmaction'],
                TARGETS.get(f'{fig}: tsmnet / mmaction'),
                quartiles=r['spread']['tsmnet / mmaction'])
            row(f'{fig}: no shift / MMAction2 ResNetTSM', r['no_shift / mmaction'],
                quartiles=r['spread']['no_shift / mmaction'])
        if 'tsm_fused / tsm' in r:
            row(f'{fig}: tsmnet, BN folded / tsmnet', r['tsm_fused / tsm'],
                quartiles=r['spread']['tsm_fused / tsm'])
        if 'tsm_fused / mmaction' in r:
            row(f'{fig}: tsmnet, BN folded / MMAction2 ResNetTSM', r['tsm_fused / mmaction'],
                TARGETS.get(f'{fig}: tsmnet / mmaction'),
                quartiles=r['spread']['tsm_fused / mmaction'])
    if 'memory' in report:
        r = report['memory']
        sizes = ', '.join(f'{k} {v / 2**20:.1f} MiB' for k, v in r['bytes'].items())
        if 'tsmnet / mmaction' in r:
            row('saved activations: tsmnet / MMAction2', r['tsmnet / mmaction'],
                TARGETS['memory: tsmnet / mmaction'], f'({sizes})')
            row('saved activations: no shift / MMAction2', r['no_shift / mmaction'])
        row('saved activations: ResNetTSM / no shift', r['tsm / no_shift'],
            note='' if 'tsmnet / mmaction' in r else f'({sizes})')
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    from ..benchmark import to_json
    from ..benchmark.suite import BenchConfig, run_suite

    if args.json and Path(args.json).is_dir():  # refused before minutes of timing, not after
        raise CommandError(f'--json must be a file path, got the folder {args.json}')
    report = run_suite(BenchConfig.from_options(args))  # --device cuda without CUDA: error
    print(table(report))
    print(to_json(report, args.json))
    return 0


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f'expected a positive int, got {value}')
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='cpu', help="'cpu' (default), 'cuda', 'cuda:1'...")
    parser.add_argument('--dtype', choices=DTYPE_NAMES, default='fp32',
                        help='precision of models and input (default fp32)')
    parser.add_argument('--channels-last', action='store_true',
                        help='channels-last models and input (default: contiguous)')
    parser.add_argument('--depth', type=int, default=50, choices=RESNET_DEPTHS,
                        help='ResNet depth (default 50)')
    parser.add_argument('--num-segments', type=_positive, default=8,
                        help='frames per clip T (default 8)')
    parser.add_argument('--size', type=_positive, default=112,
                        help='frame height and width (default 112)')
    parser.add_argument('--batch', type=_positive, default=2,
                        help='clips N per batch; the input is [N * T, 3, size, size] '
                             '(default 2, 16 frames with T=8)')
    parser.add_argument('--repeats', type=_positive, default=7,
                        help='interleaved repeats per model figure; the op figures take 3x '
                             'as many (default 7)')
    parser.add_argument('--threads', type=_positive, default=None,
                        help='torch CPU threads (default: torch.get_num_threads())')
    parser.add_argument('--figures', nargs='+', choices=FIGURES, default=list(FIGURES),
                        help=f'which figures to run (default all: {" ".join(FIGURES)})')
    parser.add_argument('--json', metavar='PATH', help='also write the JSON report here')


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'bench', help='speed and memory ratios of the shift and ResNetTSM',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``benchmarks/bench_tsm.py``: the same as ``tsmnet bench``."""
    parser = argparse.ArgumentParser(prog='bench_tsm', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
