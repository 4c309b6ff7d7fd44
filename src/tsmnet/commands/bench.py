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
synchronise the device around each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..archs import RESNET_DEPTHS
from ..fileio import write_text
from ..mmaction_compat import import_mmaction_models, mmaction_available
from .errors import CommandError

DTYPES = ('fp32', 'fp16', 'bf16')
FIGURES = ('shift', 'infer', 'train', 'memory')
TARGETS: dict[str, float] = {  # the targets of the performance issue (CPU, fp32)
    'shift_fwd / clone': 1.1,
    'shift_fwd_bwd / mul_fwd_bwd': 1.2,
    'in_place_undo / clone': 0.6,  # the GPU target (issue 13)
    'infer: tsm / no_shift': 1.03,
    'train: tsm / no_shift': 1.03,
    'infer: tsmnet / mmaction': 0.95,
    'memory: tsmnet / mmaction': 0.85,
}


# --------------------------------------------------------------------------- timing
class Timer:
    """Wall-clock timing of a callable on one device (CUDA work synchronised)."""

    def __init__(self, device: Any) -> None:
        import torch

        self.cuda = device.type == 'cuda'
        self._sync = torch.cuda.synchronize if self.cuda else (lambda: None)

    def __call__(self, fn: Callable[[], Any], inner: int = 1) -> float:
        """Seconds per call of ``fn``, averaged over ``inner`` back-to-back calls."""
        self._sync()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        self._sync()
        return (time.perf_counter() - start) / inner

    def calibrate(self, fn: Callable[[], Any], least_s: float = 0.02) -> int:
        """How many back-to-back calls make one measurement of at least ``least_s``."""
        start = time.perf_counter()  # warm-up (allocator, kernel selection): 3 calls, 0.05 s
        for i in range(1000):
            fn()
            if i >= 2 and time.perf_counter() - start > 0.05:
                break
        once = max(self(fn), 1e-6)
        return max(1, min(1000, int(least_s / once) + 1))


def interleaved(timer: Timer, candidates: dict[str, Callable[[], Any]], repeats: int,
                least_s: float = 0.02) -> dict[str, list[float]]:
    """Time each candidate ``repeats`` times, interleaved, in an order that rotates."""
    inner = {k: timer.calibrate(fn, least_s) for k, fn in candidates.items()}
    names = list(candidates)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            times[k].append(timer(candidates[k], inner[k]))
    return times


def ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over repeats of ``num / den`` measured in the same repeat."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def spread(times: dict[str, list[float]], num: str, den: str) -> list[float]:
    """First and third quartiles over repeats of ``num / den``: how far the noise of the
    machine moves the ratio (the same as the median with fewer than 4 repeats)."""
    ratios = [a / b for a, b in zip(times[num], times[den])]
    if len(ratios) < 4:
        return [statistics.median(ratios)] * 2
    q1, _, q3 = statistics.quantiles(ratios, n=4, method='inclusive')
    return [q1, q3]


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in times.items()}


# --------------------------------------------------------------------------- models
def _mmaction_resnet_tsm() -> tuple[type | None, str]:
    """MMAction2's ``ResNetTSM`` class, or None and the reason it is not available."""
    if not mmaction_available():
        return None, 'mmaction2 is not installed'
    try:
        models = import_mmaction_models()  # with the stand-in where the wheel lacks drn
    except ImportError as err:
        return None, f'mmaction.models does not import ({err})'
    return models.ResNetTSM, ''


def _init_(model: Any, seed: int) -> None:
    """Seeded Kaiming init of every conv, BN weight 1 / bias 0 (quiet: no init log)."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            fan_out = m.out_channels * m.weight[0, 0].numel() // m.groups
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_out) ** .5)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_models(args: argparse.Namespace, device: Any, dtype: Any) -> tuple[dict[str, Any], str]:
    """tsmnet's ResNetTSM, the same ResNet without shift and MMAction2's ResNetTSM, all
    with the same weights, on ``device`` in ``dtype`` (and channels-last if asked)."""
    import torch

    from tsmnet import ResNetTSM

    tsm = ResNetTSM(args.depth, num_segments=args.num_segments, pretrained=None)
    _init_(tsm, seed=0)
    state = tsm.state_dict()
    plain = ResNetTSM(args.depth, num_segments=args.num_segments, pretrained=None,
                      is_shift=False)
    # the shift wrapper adds `.net` to the keys of the conv it wraps
    plain.load_state_dict({k.replace('.conv.net.', '.conv.'): v for k, v in state.items()})
    models = {'tsm': tsm, 'no_shift': plain}
    mm_cls, why = _mmaction_resnet_tsm()
    if mm_cls is not None:
        mm = mm_cls(args.depth, num_segments=args.num_segments, pretrained=None)
        mm.load_state_dict(state)
        models['mmaction'] = mm
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    for m in models.values():
        m.to(device=device, dtype=dtype, memory_format=fmt)
    return models, why


def frames(args: argparse.Namespace, device: Any, dtype: Any, seed: int = 0) -> Any:
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(args.batch * args.num_segments, 3, args.size, args.size, generator=gen)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    return x.to(device=device, dtype=dtype).contiguous(memory_format=fmt)


def shift_sites(model: Any, x: Any) -> list[tuple[Any, int, int, str]]:
    """``(input, num_segments, shift_div, shift_mode)`` of every TemporalShift in one forward."""
    import torch

    from tsmnet import TemporalShift

    sites: list[tuple[Any, int, int, str]] = []
    handles = [m.register_forward_pre_hook(
        lambda mod, inp: sites.append((inp[0].detach().clone(memory_format=torch.preserve_format),
                                       mod.num_segments, mod.shift_div, mod.shift_mode))
    ) for m in model.modules() if isinstance(m, TemporalShift)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return sites


def saved_bytes(model: Any, x: Any) -> int:
    """Bytes of the distinct storages autograd saves in one training forward, parameters and
    buffers excluded."""
    import torch

    skip = {t.untyped_storage().data_ptr() for t in
            list(model.parameters()) + list(model.buffers())}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return sum(seen.values())


# --------------------------------------------------------------------------- figures
def bench_shift(args: argparse.Namespace, models: dict[str, Any], x: Any,
                timer: Timer) -> list[dict[str, Any]]:
    """Rows of shift_fwd / clone and shift_fwd_bwd / mul_fwd_bwd per distinct input shape,
    and for all the sites of one forward."""
    import torch

    from tsmnet import temporal_shift
    from tsmnet.shift import ShiftSpec, shifted_in_place, use_backend

    ab = kernels_ab(x)
    sites = shift_sites(models['tsm'], x)
    by_shape: dict[tuple[int, ...], list[tuple[Any, int, int, str]]] = {}
    for site in sites:
        by_shape.setdefault(tuple(site[0].shape), []).append(site)
    groups = [(f'{"x".join(map(str, s))} (x{len(v)})', v[:1]) for s, v in by_shape.items()]
    groups.append((f'all sites ({len(sites)})', sites))
    grads = {id(s[0]): torch.randn_like(s[0]) for s in sites}
    leaves = {id(s[0]): s[0].detach().requires_grad_() for s in sites}
    specs = {id(s[0]): ShiftSpec.of(s[1], s[0].shape[1] // s[2], s[3]) for s in sites}
    rows = []
    for label, group in groups:
        def clone(group=group) -> None:
            for s in group:
                s[0].clone()

        def shift(group=group) -> None:
            for s in group:
                temporal_shift(*s)

        def shift_torch(group=group) -> None:
            with use_backend('torch'):
                shift(group)

        def mul_fwd_bwd(group=group) -> None:
            for s in group:
                leaf = leaves[id(s[0])]
                leaf.grad = None
                leaf.mul(1.0).backward(grads[id(s[0])])

        def shift_fwd_bwd(group=group) -> None:
            for s in group:
                leaf = leaves[id(s[0])]
                leaf.grad = None
                temporal_shift(leaf, *s[1:]).backward(grads[id(s[0])])

        def shift_fwd_bwd_torch(group=group) -> None:
            with use_backend('torch'):
                shift_fwd_bwd(group)

        def in_place_undo(group=group) -> None:
            for s in group:
                with shifted_in_place(s[0], specs[id(s[0])]):
                    pass

        fwd_candidates = {'shift': shift, 'clone': clone, 'in_place_undo': in_place_undo}
        bwd_candidates = {'shift_fwd_bwd': shift_fwd_bwd, 'mul_fwd_bwd': mul_fwd_bwd}
        if ab:
            fwd_candidates['shift_torch'] = shift_torch
            bwd_candidates['shift_fwd_bwd_torch'] = shift_fwd_bwd_torch
        with torch.no_grad():
            fwd = interleaved(timer, fwd_candidates, args.repeats * 3)
        bwd = interleaved(timer, bwd_candidates, args.repeats * 3)
        row = dict(shape=label,
                   fwd_ratio=ratio(fwd, 'shift', 'clone'),
                   fwd_spread=spread(fwd, 'shift', 'clone'),
                   in_place_ratio=ratio(fwd, 'in_place_undo', 'clone'),
                   in_place_spread=spread(fwd, 'in_place_undo', 'clone'),
                   fwd_bwd_ratio=ratio(bwd, 'shift_fwd_bwd', 'mul_fwd_bwd'),
                   fwd_bwd_spread=spread(bwd, 'shift_fwd_bwd', 'mul_fwd_bwd'),
                   times_s={**medians(fwd), **medians(bwd)})
        if ab:
            row.update(torch_fwd_ratio=ratio(fwd, 'shift_torch', 'clone'),
                       torch_fwd_spread=spread(fwd, 'shift_torch', 'clone'),
                       torch_fwd_bwd_ratio=ratio(bwd, 'shift_fwd_bwd_torch', 'mul_fwd_bwd'),
                       torch_fwd_bwd_spread=spread(bwd, 'shift_fwd_bwd_torch', 'mul_fwd_bwd'))
        rows.append(row)
    return rows


def bench_call_cost(timer: Timer, repeats: int, device: Any, dtype: Any) -> dict[str, Any]:
    """The fixed cost of one ``temporal_shift`` call over its kernel, on 8x64x1x1 frames
    (T=8), where the kernel moves almost nothing: the median over interleaved repeats of
    (call - the chosen backend's kernel called directly), in seconds, with ``x.clone()``."""
    import torch

    from tsmnet import temporal_shift
    from tsmnet.shift import BACKENDS, ShiftSpec, choose

    x = torch.randn(8, 64, 1, 1, device=device, dtype=dtype)
    spec = ShiftSpec.of(8, 8)
    plan = choose(x, spec)
    kernel = BACKENDS[plan.backend].copy
    with torch.no_grad():
        times = interleaved(timer, {'call': lambda: temporal_shift(x, 8),
                                    'kernel': lambda: kernel(x, spec),
                                    'clone': lambda: x.clone()}, repeats * 5)
    over = [a - b for a, b in zip(times['call'], times['kernel'])]
    return dict(shape='8x64x1x1', backend=plan.backend, over_kernel_s=statistics.median(over),
                times_s=medians(times))


def kernels_ab(x: Any) -> bool:
    """Whether tsmnet's shift runs a kernel backend on ``x`` (native or triton: not the
    PyTorch ops), so that a run with the PyTorch ops alone is a different candidate worth
    timing beside it."""
    from tsmnet.shift import ShiftSpec, choose

    return choose(x, ShiftSpec.of(1, 1)).backend in ('native', 'triton')


def bench_models(args: argparse.Namespace, models: dict[str, Any], x: Any, timer: Timer,
                 train: bool) -> dict[str, Any]:
    """Inference (or training-step) time of each model, and the ratios."""
    import torch

    from tsmnet import fuse_conv_bn
    from tsmnet.shift import use_backend

    def infer(m: Any) -> Callable[[], Any]:
        def run() -> None:
            with torch.inference_mode():
                m(x)
        return run

    grad = None
    if train:  # a fixed random output gradient (the gradient of a mean is constant, and a
        # constant gradient through BN vanishes into denormals, which are very slow on CPUs)
        with torch.no_grad():
            out = models['tsm'].eval()(x)
        gen = torch.Generator().manual_seed(1)
        grad = torch.randn(out.shape, generator=gen).to(out).contiguous(
            memory_format=torch.channels_last if args.channels_last else torch.contiguous_format)

    def step(m: Any) -> Callable[[], Any]:
        def run() -> None:
            m.zero_grad(set_to_none=True)
            m(x).backward(grad)
        return run

    for m in models.values():
        m.train(train)
    pairs = {'tsm / no_shift': ('tsm', 'no_shift')}
    if not train:  # inference may fold batch norm into the convs: tsmnet.fuse_conv_bn
        models = {**models, 'tsm_fused': fuse_conv_bn(models['tsm'])}
        pairs['tsm_fused / tsm'] = ('tsm_fused', 'tsm')
    candidates = {k: (step if train else infer)(m) for k, m in models.items()}
    if kernels_ab(x):  # the same tsmnet model with its shifts made of PyTorch ops
        def torch_ops(run=candidates['tsm']) -> None:
            with use_backend('torch'):
                run()
        candidates['tsm_torch'] = torch_ops
        pairs['tsm_torch / no_shift'] = ('tsm_torch', 'no_shift')
        pairs['tsm / tsm_torch'] = ('tsm', 'tsm_torch')
    times = interleaved(timer, candidates, args.repeats, least_s=0.0)
    if 'mmaction' in models:
        pairs['tsmnet / mmaction'] = ('tsm', 'mmaction')
        pairs['no_shift / mmaction'] = ('no_shift', 'mmaction')
        if not train:
            pairs['tsm_fused / mmaction'] = ('tsm_fused', 'mmaction')
    result: dict[str, Any] = {name: ratio(times, *pair) for name, pair in pairs.items()}
    result['spread'] = {name: spread(times, *pair) for name, pair in pairs.items()}
    result['times_s'] = medians(times)
    return result


def bench_memory(models: dict[str, Any], x: Any) -> dict[str, Any]:
    saved = {k: saved_bytes(m, x) for k, m in models.items()}
    result: dict[str, Any] = {'bytes': saved,
                              'tsm / no_shift': saved['tsm'] / saved['no_shift']}
    if 'mmaction' in models:
        result['tsmnet / mmaction'] = saved['tsm'] / saved['mmaction']
        result['no_shift / mmaction'] = saved['no_shift'] / saved['mmaction']
    return result


def machine(device: Any) -> str:
    import platform

    import torch

    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg() -> float | None:
    """The 1-minute load average (a shared machine slows small parallel ops by whole
    scheduler slices: compare it with the number of cores), None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _native_status() -> str:
    from tsmnet.shift import native

    return 'in use on the CPU' if native.kernels() is not None else native.why_not()


def _backends() -> dict[str, str]:
    from tsmnet.shift import backend_status

    return {name: why or 'available' for name, why in backend_status().items()}


def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    """Run the figures asked for; return them as one JSON-ready dict."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('tsmnet bench: --device cuda but torch.cuda.is_available() is False')
    dtype = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}[args.dtype]
    timer = Timer(device)
    models, why = build_models(args, device, dtype)
    x = frames(args, device, dtype)
    report: dict[str, Any] = dict(
        config=dict(device=str(device), machine=machine(device), dtype=args.dtype,
                    channels_last=args.channels_last, depth=args.depth,
                    num_segments=args.num_segments, size=args.size, clips=args.batch,
                    frames=args.batch * args.num_segments, repeats=args.repeats,
                    threads=torch.get_num_threads(), torch=torch.__version__,
                    loadavg_before=_loadavg(),
                    mmaction=why or 'ResNetTSM of mmaction2 (same weights)',
                    native_kernels=_native_status(), shift_backends=_backends()),
        targets=TARGETS)
    if 'shift' in args.figures:
        report['call_cost'] = bench_call_cost(timer, args.repeats, device, dtype)
        report['shift'] = bench_shift(args, models, x, timer)
    if 'infer' in args.figures:
        report['infer'] = bench_models(args, models, x, timer, train=False)
    if 'train' in args.figures:
        report['train'] = bench_models(args, models, x, timer, train=True)
    if 'memory' in args.figures:
        report['memory'] = bench_memory(models, x)
    report['config']['loadavg_after'] = _loadavg()
    return report


def table(report: dict[str, Any]) -> str:
    """The report as a readable table of ratios (and median times)."""
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
    if args.json and Path(args.json).is_dir():  # refused before minutes of timing, not after
        raise CommandError(f'--json must be a file path, got the folder {args.json}')
    report = run_suite(args)
    print(table(report))
    text = json.dumps(report, sort_keys=True)
    if args.json:
        write_text(args.json, text + '\n')
    print(text)
    return 0


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f'expected a positive int, got {value}')
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='cpu', help="'cpu' (default), 'cuda', 'cuda:1'...")
    parser.add_argument('--dtype', choices=DTYPES, default='fp32',
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
