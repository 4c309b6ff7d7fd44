"""What bounds the shift on a device: bytes moved against the copy's bandwidth, and kernel
launches per call. ``python benchmarks/gpu_bounds.py --device cuda [--dtype bf16
--channels-last]``.

For every shift site of ResNet-50-TSM (T=8) at the given input, and for each backend that
can run there: the median time of one call, the bytes it must move (a copy reads and writes
every element; the in-place shift and its undo read and write only the folds, twice), the
bandwidth that makes, ``x.clone()``'s for comparison, and the kernels one call launches
(``torch.profiler``). Prints a table, then JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

import torch

from tsmnet import ResNetTSM, TemporalShift, temporal_shift
from tsmnet.benchmark import Timer
from tsmnet.shift import ShiftSpec, backend_status, shifted_in_place, use_backend


def _time(fn, timer: Timer, repeats: int = 50) -> float:
    """The median seconds of one call (synchronised), after 5 warm-up calls."""
    for _ in range(5):
        fn()
    return statistics.median(timer(fn) for _ in range(repeats))


def _launches(fn, device: torch.device) -> int | None:
    if device.type != 'cuda':
        return None
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type.name == 'CUDA')


def sites(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> list[Any]:
    model = ResNetTSM(50, num_segments=8, pretrained=None).to(device, dtype).eval()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    x = torch.randn(args.batch * 8, 3, args.size, args.size, device=device, dtype=dtype)
    found: dict[tuple[int, ...], Any] = {}

    def keep(mod: TemporalShift, inp: tuple[torch.Tensor, ...]) -> None:
        found.setdefault(tuple(inp[0].shape), (inp[0].clone(memory_format=torch.preserve_format),
                                               mod.num_segments, mod.shift_div))

    handles = [m.register_forward_pre_hook(keep) for m in model.modules()
               if isinstance(m, TemporalShift)]
    with torch.no_grad():
        model(x.contiguous(memory_format=fmt))
    for h in handles:
        h.remove()
    return list(found.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='gpu_bounds', description=__doc__)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--dtype', choices=('fp32', 'fp16', 'bf16'), default='fp32')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--batch', type=int, default=8, help='clips (default 8: 64 frames)')
    parser.add_argument('--size', type=int, default=224)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}[args.dtype]
    timer = Timer(device)
    status = backend_status()
    backends = [b for b in ('triton', 'torch', 'native') if not status[b]]
    rows = []
    with torch.no_grad():
        for x, t, div in sites(args, device, dtype):
            nbytes = x.numel() * x.element_size()
            spec = ShiftSpec.of(t, x.shape[1] // div)
            fold_bytes = nbytes * spec.shifted_channels // x.shape[1]
            clone_s = _time(lambda x=x: x.clone(), timer)
            row: dict[str, Any] = dict(shape=list(x.shape), clone_us=clone_s * 1e6,
                                       clone_gbps=2 * nbytes / clone_s / 1e9,
                                       clone_launches=_launches(lambda x=x: x.clone(), device))
            for b in backends:
                try:
                    with use_backend(b):
                        copy_s = _time(lambda x=x, t=t, div=div: temporal_shift(x, t, div), timer)
                        row[f'{b}_copy_us'] = copy_s * 1e6
                        row[f'{b}_copy_gbps'] = 2 * nbytes / copy_s / 1e9
                        row[f'{b}_copy_launches'] = _launches(
                            lambda x=x, t=t, div=div: temporal_shift(x, t, div), device)

                        def undo(x=x, spec=spec) -> None:
                            with shifted_in_place(x, spec):
                                pass
                        in_s = _time(undo, timer)
                        row[f'{b}_in_place_undo_us'] = in_s * 1e6
                        # the folds are read and written once by the shift, once by the undo
                        row[f'{b}_in_place_undo_gbps'] = 4 * fold_bytes / in_s / 1e9
                        row[f'{b}_in_place_undo_launches'] = _launches(undo, device)
                except RuntimeError as err:  # a backend without an in-place shift here
                    row[f'{b}_error'] = str(err)
            rows.append(row)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    print(f'gpu_bounds: ResNet-50-TSM sites, {args.batch * 8}x3x{args.size}x{args.size}, '
          f'{args.dtype}{", channels_last" if args.channels_last else ""}, {name}')
    for r in rows:
        parts = [f"clone {r['clone_us']:.0f} us {r['clone_gbps']:.0f} GB/s"]
        for b in backends:
            if f'{b}_copy_us' in r:
                parts.append(f"{b}: copy {r[f'{b}_copy_us']:.0f} us "
                             f"{r[f'{b}_copy_gbps']:.0f} GB/s x{r[f'{b}_copy_launches']}")
            if f'{b}_in_place_undo_us' in r:
                parts.append(f"in-place+undo {r[f'{b}_in_place_undo_us']:.0f} us "
                             f"x{r[f'{b}_in_place_undo_launches']}")
        print(f"{'x'.join(map(str, r['shape']))}: " + '; '.join(parts))
    print(json.dumps(dict(device=name, dtype=args.dtype, channels_last=args.channels_last,
                          rows=rows)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
