"""Streaming cost: per-frame ``TSMStream.step`` time / (offline clip time / T).

A causal ResNetTSM processes a clip of ``T`` frames either offline (one pass over
``[T, 3, S, S]``) or online (``T`` steps of ``[1, 3, S, S]`` with cached shift buffers). The
figure is the median, over interleaved repeats (:func:`tsmnet.benchmark.frame_times`: the
order rotates each repeat), of the per-frame step time over the offline time per frame of the
same repeat (the ratio of the two medians is reported too). The stream folds its batch norms
(``TSMStream``'s default); in the same repeats are also timed: the stream with
``fold_batch_norms=False``, and the same T frames one at a time through a plain ResNet of the
same depth (no shift), which shows what the streaming shift itself costs. Prints JSON.

On a quiet machine leave OpenMP's wait policy alone: with ``OMP_WAIT_POLICY=PASSIVE`` every
one of the ~200 parallel regions of a frame wakes sleeping threads, which costs a batch of one
frame far more than a batch of eight. Where other jobs share the cores, spinning threads are
the worse evil; use ``PASSIVE`` or ``--threads 1`` there (docs/streaming.md).

    python benchmarks/bench_stream.py --threads 2        # ResNet-50, 224x224, T=8, CPU
    python benchmarks/bench_stream.py --depth 18 --size 112 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import torch

from tsmnet import ResNet, ResNetTSM
from tsmnet.benchmark import Timer, frame_times, medians, pinned_threads, ratio, to_json
from tsmnet.stream import TSMStream


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
    with pinned_threads(args.threads), torch.no_grad():
        result = run(args)
    text = to_json(result, args.output, indent=2)  # atomic: a failed write keeps the old file
    print(text)


def run(args: argparse.Namespace) -> dict[str, Any]:
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
    unfolded_stream = TSMStream(model, fold_batch_norms=False)
    timer = Timer(device)
    sync = torch.cuda.synchronize if timer.cuda else (lambda: None)

    def offline() -> None:
        model(offline_input)

    step_times: list[float] = []

    def online() -> None:
        stream.reset()
        for i in range(t):
            start = time.perf_counter()
            stream.step(clip[:, i])
            sync()
            step_times.append(time.perf_counter() - start)

    def online_unfolded() -> None:
        unfolded_stream.reset()
        for i in range(t):
            unfolded_stream.step(clip[:, i])

    def plain_frames() -> None:  # the same T frames, one at a time, through a plain ResNet
        for i in range(t):
            plain(clip[:, i])

    times = frame_times(timer, {'offline': offline, 'online': online,
                                'online_unfolded': online_unfolded, 'plain': plain_frames},
                        frames=t, repeats=args.repeats)
    per_frame = medians(times)
    offline_frame, online_frame = per_frame['offline'], per_frame['online']
    plain_frame_s = per_frame['plain']
    steps = sorted(step_times[t:])  # the first t are the warm-up's
    paired = ratio(times, 'online', 'offline')
    paired_plain = ratio(times, 'online', 'plain')
    paired_unfolded = ratio(times, 'online_unfolded', 'offline')
    return {
        'benchmark': 'stream',
        'figure': 'per-frame step time / (offline clip time / T)',
        'ratio': round(paired, 4),
        'ratio_of_medians': round(online_frame / offline_frame, 4),
        'target': 1.15,
        'ratio_unfolded': round(paired_unfolded, 4),
        'step_vs_plain_resnet_frame': round(paired_plain, 4),
        'step_ms': {'median': round(1e3 * statistics.median(steps), 2),
                    'p90': round(1e3 * steps[int(0.9 * (len(steps) - 1))], 2)},
        'offline_ms_per_frame': round(1e3 * offline_frame, 2),
        'unfolded_step_ms_per_frame': round(1e3 * per_frame['online_unfolded'], 2),
        'plain_resnet_ms_per_frame': round(1e3 * plain_frame_s, 2),
        'config': {'depth': args.depth, 'size': args.size, 'frames': t, 'streams': n,
                   'repeats': args.repeats, 'threads': torch.get_num_threads(),
                   'device': str(device), 'torch': torch.__version__,
                   'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY'),
                   'machine': platform.machine(), 'shift_sites': stream.num_sites},
    }


if __name__ == '__main__':
    main()
