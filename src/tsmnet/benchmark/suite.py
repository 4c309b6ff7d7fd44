"""The figures of ``tsmnet bench`` (see :mod:`tsmnet.commands.bench` for what each one is):
the models it compares, the inputs of their shifts, and one function per figure, all timed by
:mod:`tsmnet.benchmark.harness`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from .._torch_compat import BatchNormBase, ConvBase
from ..fuse import fuse_conv_bn
from ..layers import TemporalShift
from ..mmaction_compat import import_mmaction_models, mmaction_available
from ..models import ResNetTSM
from ..shift import (
    BACKENDS,
    ShiftSpec,
    backend_status,
    choose,
    native,
    shifted_in_place,
    temporal_shift,
    use_backend,
)
from . import harness

__all__ = ['DTYPES', 'FIGURES', 'TARGETS', 'BenchConfig', 'bench_memory', 'bench_models',
           'bench_shift', 'build_models', 'frames', 'kernels_ab', 'run_suite', 'shift_sites']

DTYPES: dict[str, torch.dtype] = {'fp32': torch.float32, 'fp16': torch.float16,
                                  'bf16': torch.bfloat16}
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


@dataclass
class BenchConfig:
    """What to measure and on what: the options of ``tsmnet bench``.

    The input is ``[batch * num_segments, 3, size, size]``; ``repeats`` is per model figure
    (the op figures take 3x as many); ``threads`` None keeps torch's own choice.
    """

    device: str = 'cpu'
    dtype: str = 'fp32'  # a key of DTYPES
    channels_last: bool = False
    depth: int = 50
    num_segments: int = 8
    size: int = 112
    batch: int = 2
    repeats: int = 7
    threads: int | None = None
    figures: tuple[str, ...] | list[str] = field(default=FIGURES)

    @classmethod
    def from_options(cls, options: Any) -> BenchConfig:
        """The config of parsed command-line options (an ``argparse.Namespace``): each field
        it has, the default for the others."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls)
                      if hasattr(options, f.name)})


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
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, ConvBase):
            fan_out = m.out_channels * m.weight[0, 0].numel() // m.groups
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_out) ** .5)
        elif isinstance(m, BatchNormBase):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_models(config: BenchConfig, device: torch.device,
                 dtype: torch.dtype) -> tuple[dict[str, nn.Module], str]:
    """tsmnet's ResNetTSM, the same ResNet without shift and MMAction2's ResNetTSM, all
    with the same weights, on ``device`` in ``dtype`` (and channels-last if asked)."""
    tsm = ResNetTSM(config.depth, num_segments=config.num_segments, pretrained=None)
    _init_(tsm, seed=0)
    state = tsm.state_dict()
    plain = ResNetTSM(config.depth, num_segments=config.num_segments, pretrained=None,
                      is_shift=False)
    # the shift wrapper adds `.net` to the keys of the conv it wraps
    plain.load_state_dict({k.replace('.conv.net.', '.conv.'): v for k, v in state.items()})
    models = {'tsm': tsm, 'no_shift': plain}
    mm_cls, why = _mmaction_resnet_tsm()
    if mm_cls is not None:
        mm = mm_cls(config.depth, num_segments=config.num_segments, pretrained=None)
        mm.load_state_dict(state)
        models['mmaction'] = mm
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    for m in models.values():
        m.to(device=device, dtype=dtype, memory_format=fmt)
    return models, why


def frames(config: BenchConfig, device: torch.device, dtype: torch.dtype,
           seed: int = 0) -> torch.Tensor:
    """Seeded random frames ``[batch * num_segments, 3, size, size]``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(config.batch * config.num_segments, 3, config.size, config.size,
                    generator=gen)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    return x.to(device=device, dtype=dtype).contiguous(memory_format=fmt)


def shift_sites(model: Any, x: Any) -> list[tuple[Any, int, int, str]]:
    """``(input, num_segments, shift_div, shift_mode)`` of every TemporalShift in one forward."""
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


# --------------------------------------------------------------------------- figures
def bench_shift(config: BenchConfig, models: dict[str, Any], x: Any,
                timer: harness.Timer) -> list[dict[str, Any]]:
    """Rows of shift_fwd / clone and shift_fwd_bwd / mul_fwd_bwd per distinct input shape,
    and for all the sites of one forward."""
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
            fwd = harness.interleaved(timer, fwd_candidates, config.repeats * 3)
        bwd = harness.interleaved(timer, bwd_candidates, config.repeats * 3)
        row = dict(shape=label,
                   fwd_ratio=harness.ratio(fwd, 'shift', 'clone'),
                   fwd_spread=harness.spread(fwd, 'shift', 'clone'),
                   in_place_ratio=harness.ratio(fwd, 'in_place_undo', 'clone'),
                   in_place_spread=harness.spread(fwd, 'in_place_undo', 'clone'),
                   fwd_bwd_ratio=harness.ratio(bwd, 'shift_fwd_bwd', 'mul_fwd_bwd'),
                   fwd_bwd_spread=harness.spread(bwd, 'shift_fwd_bwd', 'mul_fwd_bwd'),
                   times_s={**harness.medians(fwd), **harness.medians(bwd)})
        if ab:
            torch_pair = ('shift_fwd_bwd_torch', 'mul_fwd_bwd')
            row.update(torch_fwd_ratio=harness.ratio(fwd, 'shift_torch', 'clone'),
                       torch_fwd_spread=harness.spread(fwd, 'shift_torch', 'clone'),
                       torch_fwd_bwd_ratio=harness.ratio(bwd, *torch_pair),
                       torch_fwd_bwd_spread=harness.spread(bwd, *torch_pair))
        rows.append(row)
    return rows


def kernels_ab(x: Any) -> bool:
    """Whether tsmnet's shift runs a kernel backend on ``x`` (native or triton: not the
    PyTorch ops), so that a run with the PyTorch ops alone is a different candidate worth
    timing beside it."""

    return choose(x, ShiftSpec.of(1, 1)).backend in ('native', 'triton')


def bench_models(config: BenchConfig, models: dict[str, Any], x: Any, timer: harness.Timer,
                 train: bool) -> dict[str, Any]:
    """Inference (or training-step) time of each model, and the ratios."""
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
            memory_format=torch.channels_last if config.channels_last else torch.contiguous_format)

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
    times = harness.interleaved(timer, candidates, config.repeats, least_s=0.0)
    if 'mmaction' in models:
        pairs['tsmnet / mmaction'] = ('tsm', 'mmaction')
        pairs['no_shift / mmaction'] = ('no_shift', 'mmaction')
        if not train:
            pairs['tsm_fused / mmaction'] = ('tsm_fused', 'mmaction')
    result: dict[str, Any] = {name: harness.ratio(times, *pair) for name, pair in pairs.items()}
    result['spread'] = {name: harness.spread(times, *pair) for name, pair in pairs.items()}
    result['times_s'] = harness.medians(times)
    return result


def bench_memory(models: dict[str, Any], x: Any) -> dict[str, Any]:
    saved = {k: harness.saved_bytes(m, x) for k, m in models.items()}
    result: dict[str, Any] = {'bytes': saved,
                              'tsm / no_shift': saved['tsm'] / saved['no_shift']}
    if 'mmaction' in models:
        result['tsmnet / mmaction'] = saved['tsm'] / saved['mmaction']
        result['no_shift / mmaction'] = saved['no_shift'] / saved['mmaction']
    return result


def bench_call_cost(timer: harness.Timer, repeats: int, device: Any, dtype: Any) -> dict[str, Any]:
    """The fixed cost of one ``temporal_shift`` call over its kernel, on 8x64x1x1 frames
    (T=8), where the kernel moves almost nothing: the median over interleaved repeats of
    (call - the chosen backend's kernel called directly), in seconds, with ``x.clone()``."""
    x = torch.randn(8, 64, 1, 1, device=device, dtype=dtype)
    spec = ShiftSpec.of(8, 8)
    plan = choose(x, spec)
    kernel = BACKENDS[plan.backend].copy
    with torch.no_grad():
        times = harness.interleaved(timer, {'call': lambda: temporal_shift(x, 8),
                                            'kernel': lambda: kernel(x, spec),
                                            'clone': lambda: x.clone()}, repeats * 5)
    over = [a - b for a, b in zip(times['call'], times['kernel'])]
    return dict(shape='8x64x1x1', backend=plan.backend, over_kernel_s=statistics.median(over),
                times_s=harness.medians(times))


def _native_status() -> str:
    return 'in use on the CPU' if native.kernels() is not None else native.why_not()


def _backends() -> dict[str, str]:
    return {name: why or 'available' for name, why in backend_status().items()}


def run_suite(config: BenchConfig) -> dict[str, Any]:
    """Run the figures asked for; return them as one JSON-ready dict.

    Raises:
        ValueError: ``config.device`` is a CUDA device and CUDA is not available.
    """
    device = torch.device(config.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device is {config.device!r} but torch.cuda.is_available() is False')
    dtype = DTYPES[config.dtype]
    with harness.pinned_threads(config.threads) as threads:
        timer = harness.Timer(device)
        models, why = build_models(config, device, dtype)
        x = frames(config, device, dtype)
        report: dict[str, Any] = dict(
            config=dict(device=str(device), machine=harness.machine(device), dtype=config.dtype,
                        channels_last=config.channels_last, depth=config.depth,
                        num_segments=config.num_segments, size=config.size,
                        clips=config.batch, frames=config.batch * config.num_segments,
                        repeats=config.repeats, threads=threads, torch=torch.__version__,
                        loadavg_before=harness.loadavg(),
                        mmaction=why or 'ResNetTSM of mmaction2 (same weights)',
                        native_kernels=_native_status(), shift_backends=_backends()),
            targets=TARGETS)
        if 'shift' in config.figures:
            report['call_cost'] = bench_call_cost(timer, config.repeats, device, dtype)
            report['shift'] = bench_shift(config, models, x, timer)
        if 'infer' in config.figures:
            report['infer'] = bench_models(config, models, x, timer, train=False)
        if 'train' in config.figures:
            report['train'] = bench_models(config, models, x, timer, train=True)
        if 'memory' in config.figures:
            report['memory'] = bench_memory(models, x)
        report['config']['loadavg_after'] = harness.loadavg()
    return report
