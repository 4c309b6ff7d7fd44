"""Streaming cost: per-frame ``TSMStream.step`` time / (offline clip time / T).

A causal ResNetTSM processes a clip of ``T`` frames either offline (one pass over
``[T, 3, S, S]``) or online (``T`` steps of ``[1, 3, S, S]`` with cached shift buffers). The
figure is the median, over interleaved repeats (offline and stream alternate, in alternating
order), of the per-frame step time over the offline time per frame of the same repeat (the
ratio of the two medians is reported too). Also measured, in
the same repeats: the same T frames one at a time through a plain ResNet of the same depth
(no shift), which shows what the streaming shift itself costs. Prints JSON.

On a machine shared with other jobs, OpenMP threads that spin at every barrier make any
batch-of-one network (streamed or plain) several times slower than the batched clip; run
with ``OMP_WAIT_POLICY=PASSIVE`` there (or ``--threads 1``).

    python benchmarks/bench_stream.py                    # ResNet-50, 224x224, T=8, CPU
    python benchmarks/bench_stream.py --depth 18 --size 112 --repeats 5
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_stream.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from tsmnet import ResNet, ResNetTSM
from tsmnet.fileio import write_text
from tsmnet.stream import TSMStream


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--frames', type=int, default=8, help='T, frames per clip')
    parser.add_argument('--streams', type=int, default=1, help='N, clips/streams at once')
    parser.add_argument('--repeats', type=int, default=11)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s own choice)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--output', help='also write the JSON to this file')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t, n = args.frames, args.streams

    torch.manual_seed(0)
    model = ResNetTSM(args.depth, num_segments=t, shift_mode='causal',
                      pretrained=None).to(device).eval()
    plain = ResNet(args.depth).to(device).eval()
    plain.load_state_dict({k.replace('.net.', '.'): v for k, v in model.state_dict().items()})
    clip = torch.randn(n, t, 3, args.size, args.size, device=device)
    offline_input = clip.reshape(n * t, 3, args.size, args.size)
    stream = TSMStream(model)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)

    def offline() -> None:
        model(offline_input)
        sync()

    step_times: list[float] = []

    def online() -> None:
        stream.reset()
        for i in range(t):
            start = time.perf_counter()
            stream.step(clip[:, i])
            sync()
            step_times.append(time.perf_counter() - start)

    def plain_frames() -> None:  # the same T frames, one at a time, through a plain ResNet
        for i in range(t):
            plain(clip[:, i])
        sync()

    with torch.no_grad():
        offline(), online(), plain_frames()  # warm-up (allocates the stream's buffers)
        step_times.clear()
        offline_t, online_t, plain_t = [], [], []
        for r in range(args.repeats):
            order = [(offline, offline_t), (online, online_t), (plain_frames, plain_t)]
            for fn, out in (order if r % 2 == 0 else order[::-1]):
                out.append(_time(fn))

    offline_frame = statistics.median(offline_t) / t
    online_frame = statistics.median(online_t) / t
    plain_frame_s = statistics.median(plain_t) / t
    steps = sorted(step_times)
    paired = statistics.median(o / f for o, f in zip(online_t, offline_t))
    paired_plain = statistics.median(o / p for o, p in zip(online_t, plain_t))
    result = {
        'benchmark': 'stream',
        'figure': 'per-frame step time / (offline clip time / T)',
        'ratio': round(paired, 4),
        'ratio_of_medians': round(online_frame / offline_frame, 4),
        'target': 1.15,
        'step_vs_plain_resnet_frame': round(paired_plain, 4),
        'step_ms': {'median': round(1e3 * statistics.median(steps), 2),
                    'p90': round(1e3 * steps[int(0.9 * (len(steps) - 1))], 2)},
        'offline_ms_per_frame': round(1e3 * offline_frame, 2),
        'plain_resnet_ms_per_frame': round(1e3 * plain_frame_s, 2),
        'config': {'depth': args.depth, 'size': args.size, 'frames': t, 'streams': n,
                   'repeats': args.repeats, 'threads': torch.get_num_threads(),
                   'device': str(device), 'torch': torch.__version__,
                   'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY'),
                   'machine': platform.machine(), 'shift_sites': stream.num_sites},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        write_text(args.output, text + '\n')  # atomic: a failed write keeps the old file


if __name__ == '__main__':
    main()
