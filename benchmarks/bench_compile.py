"""Compiled as fast as eager? ``python benchmarks/bench_compile.py [options]``.

Times ResNetTSM and the same ResNet without shift (``is_shift=False``, same weights), eager
and under ``torch.compile(model, fullgraph=True)`` (as a new user would), side by side: the
candidates' repeats are interleaved in a rotating order and each ratio is the median of the
per-repeat ratios, with its quartiles. The shift backend is the process's
(``TSMNET_SHIFT_BACKEND``, read when the graph is traced and not part of dynamo's cache key,
so one process compiles with one backend). ``auto`` compiles the CPU shift as the functional
backend's pointwise gather; ``TSMNET_SHIFT_BACKEND=native`` (or ``torch``) keeps the backend's
registered op in the graph instead, which is what compiled graphs held before. Prints a
table, then the JSON report on the last line. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch

from tsmnet import benchmark
from tsmnet.benchmark.suite import DTYPES, BenchConfig, build_models, frames
from tsmnet.shift import backend_status, forced_backend

PAIRS = {
    'compiled tsm / compiled no_shift': ('compiled_tsm', 'compiled_no_shift'),
    'eager tsm / eager no_shift': ('eager_tsm', 'eager_no_shift'),
    'compiled tsm / eager tsm': ('compiled_tsm', 'eager_tsm'),
    'compiled no_shift / eager no_shift': ('compiled_no_shift', 'eager_no_shift'),
}


def _runner(model: Any, x: torch.Tensor, train: bool, grad: torch.Tensor | None):
    if train:
        def step() -> None:
            model.zero_grad(set_to_none=True)
            model(x).backward(grad)
        return step

    def infer() -> None:
        with torch.no_grad():
            model(x)
    return infer


def run(args: argparse.Namespace) -> dict[str, Any]:
    with benchmark.pinned_threads(args.threads) as threads:
        return _run(args, threads)


def _run(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    timer = benchmark.Timer(device)
    config = BenchConfig.from_options(args)
    models, _ = build_models(config, device, dtype)
    x = frames(config, device, dtype)
    eager = {'tsm': models['tsm'], 'no_shift': models['no_shift']}
    for m in eager.values():
        m.train(args.train)
    grad = None
    if args.train:
        with torch.no_grad():
            out = eager['tsm'](x)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    candidates = {f'eager_{k}': _runner(m, x, args.train, grad) for k, m in eager.items()}
    compile_s = {}
    builds = [('compiled_tsm', eager['tsm']), ('compiled_no_shift', eager['no_shift'])]
    torch._dynamo.reset()
    for name, model in builds:
        compiled = torch.compile(model, fullgraph=True)
        run_once = _runner(compiled, x, args.train, grad)
        start = time.perf_counter()
        run_once()
        compile_s[name] = time.perf_counter() - start
        candidates[name] = run_once
    times = benchmark.interleaved(timer, candidates, args.repeats, least_s=0.0)
    pairs = {k: v for k, v in PAIRS.items() if v[0] in times and v[1] in times}
    return dict(
        config=dict(device=str(device), machine=benchmark.machine(device), dtype=args.dtype,
                    channels_last=args.channels_last, depth=args.depth,
                    num_segments=args.num_segments, size=args.size, clips=args.batch,
                    train=args.train, repeats=args.repeats, threads=threads,
                    torch=torch.__version__, loadavg=benchmark.loadavg(),
                    shift_backend=forced_backend(),
                    shift_backends={k: v or 'available' for k, v in backend_status().items()}),
        ratios={k: benchmark.ratio(times, *p) for k, p in pairs.items()},
        spread={k: benchmark.spread(times, *p) for k, p in pairs.items()},
        times_s=benchmark.medians(times), compile_s=compile_s)


def table(report: dict[str, Any]) -> str:
    c = report['config']
    layout = ', channels_last' if c['channels_last'] else ''
    lines = [f"bench_compile: ResNet-{c['depth']}, {c['clips'] * c['num_segments']}x3x"
             f"{c['size']}x{c['size']}, {c['dtype']}{layout}"
             f", {'train step' if c['train'] else 'inference'}, {c['device']} ({c['machine']}, "
             f"{c['threads']} threads, load {c['loadavg']}), {c['repeats']} interleaved repeats",
             f"{'figure':<56} {'median':>7} {'q1-q3':>13}"]
    for k, v in report['ratios'].items():
        q1, q3 = report['spread'][k]
        lines.append(f'{k:<56} {v:7.3f} {q1:6.3f}-{q3:.3f}')
    lines.append('median times: ' + ', '.join(f'{k} {v * 1e3:.1f} ms'
                                              for k, v in report['times_s'].items()))
    lines.append('compile (first call): ' + ', '.join(f'{k} {v:.0f} s'
                                                     for k, v in report['compile_s'].items()))
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='bench_compile', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dtype', choices=tuple(DTYPES), default='fp32')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--depth', type=int, default=50, choices=(18, 34, 50, 101, 152))
    parser.add_argument('--num-segments', type=int, default=8)
    parser.add_argument('--size', type=int, default=112)
    parser.add_argument('--batch', type=int, default=2, help='clips N (default 2: 16 frames)')
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--train', action='store_true', help='time a train step, not inference')
    parser.add_argument('--json', metavar='PATH')
    args = parser.parse_args(argv)
    report = run(args)
    print(table(report))
    print(benchmark.to_json(report, args.json))
    return 0


if __name__ == '__main__':
    sys.exit(main())
