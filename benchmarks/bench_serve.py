"""``tsmnet serve`` under load on loopback: frames/s and per-frame latency at 1, 4 and 16
streams, batched serving against 16 separate ``TSMStream`` steps, and the server's overhead
over a bare ``TSMStream.step`` at one stream.

The server (uvicorn on a thread of this process, ``tsmnet.serve.BackgroundServer``) runs a
causal MobileNetV2-TSM (random weights made well scaled, ``bench_export._well_scaled``) as
``tsmnet serve`` does: batch norms folded, channels-last; with ``--runtime onnxruntime
[--precision int8]`` its step exported to ONNX (int8: calibrated on ``--calibration`` smooth
random clips), as ``tsmnet serve --runtime onnxruntime`` steps its streams. Clients run in a
second process, each stream sending raw RGB frames of ``--size`` pixels one at a time, the
next after the previous result (a live client's pace, what the camera page does), or with
``--in-flight 2`` the next while the model steps the one before (a source that does not
wait: the round trip overlaps the step).
Per repeat, in an order that rotates (so that a slow phase of the shared machine hits them
all):

* ``serve_N`` (N = 1, 4, 16): N streams of ``--frames`` frames each, at once;
* ``separate_16``: 16 ``TSMStream`` objects of one stream each, stepped one after another
  in this process, ``--frames`` frames each (what a server without batching would run);
  under ONNX Runtime, 16 streams' buffers each stepped alone through the exported step;
* ``bare_1``: one ``TSMStream.step`` per frame, ``--frames`` frames (no server); under ONNX
  Runtime, one stream through the exported step.

Figures: medians over repeats of per-repeat ratios of seconds per frame; latencies are the
clients' (frame sent to result received), over all repeats. Prints JSON.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/bench.lock python benchmarks/bench_serve.py --threads 2
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_serve.py --runtime onnxruntime --precision int8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from collections import deque
from multiprocessing.connection import Connection

import numpy as np
import torch
import websockets
from bench_export import _well_scaled

from tsmnet import TSMStream, create_model
from tsmnet.benchmark import loadavg, machine, medians, ratio, spread, to_json
from tsmnet.deploy.calibration import smooth_clips
from tsmnet.predictor import Predictor, exported_step
from tsmnet.serve import BackgroundServer, ServeConfig, create_app, raw_frame
from tsmnet.serve.metrics import quantile
from tsmnet.video import TestProtocol

MBV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'
STREAMS = (1, 4, 16)


async def _one_stream(url: str, frame: bytes, frames: int, in_flight: int) -> list[float]:
    """One stream of ``frames`` frames, at most ``in_flight`` sent and not yet answered;
    returns each frame's latency (sent to result received)."""
    async with websockets.connect(f'{url}/v1/stream?top=3', max_size=None) as ws:
        await ws.recv()  # hello
        sent: deque[float] = deque()
        latencies = []
        while len(latencies) < frames:
            while len(sent) < in_flight and len(latencies) + len(sent) < frames:
                sent.append(time.perf_counter())
                await ws.send(frame)
            message = json.loads(await ws.recv())
            if message['type'] != 'result':
                raise RuntimeError(f'the server answered {message}')
            latencies.append(time.perf_counter() - sent.popleft())
        return latencies


async def _streams(url: str, payloads: list[bytes], frames: int, in_flight: int
                   ) -> tuple[float, list[float]]:
    start = time.perf_counter()
    results = await asyncio.gather(*(_one_stream(url, p, frames, in_flight) for p in payloads))
    return time.perf_counter() - start, [t for r in results for t in r]


def client_process(connection: Connection, url: str, size: int, in_flight: int) -> None:
    """Run rounds of streams on request: receives ``(streams, frames)``, answers with the
    round's seconds and its frames' latencies; None ends it."""
    rng = np.random.default_rng(0)
    payloads = [raw_frame(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
                for _ in range(max(STREAMS))]
    while (request := connection.recv()) is not None:
        streams, frames = request
        connection.send(asyncio.run(_streams(url, payloads[:streams], frames, in_flight)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=224, help='frame side (default: 224)')
    parser.add_argument('--frames', type=int, default=16, help='frames per stream per repeat')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2, help='torch threads of the server')
    parser.add_argument('--max-delay-ms', type=float, default=5.0)
    parser.add_argument('--in-flight', type=int, choices=(1, 2), default=1,
                        help='frames a client has sent and not had answered: 1 (default) '
                             'sends the next after the result; 2 sends the next while the '
                             'model steps the one before (the server holds 2 per stream, '
                             'so none is dropped)')
    parser.add_argument('--runtime', choices=('eager', 'onnxruntime'), default='eager',
                        help="what steps the streams (tsmnet serve's --runtime)")
    parser.add_argument('--precision', choices=('fp32', 'int8'), default='fp32')
    parser.add_argument('--calibration', type=int, default=4,
                        help='smooth random clips that calibrate int8 and scale the weights')
    parser.add_argument('--output', help='also write the JSON to this file')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = create_model(MBV2, shift_mode='causal').eval()
    calibration = smooth_clips(args.calibration, model.num_segments, 3, (args.size, args.size))
    _well_scaled(model.backbone, calibration)  # int8 needs activations of a sane scale
    protocol = TestProtocol(crop='center', resize_short=args.size, crop_size=args.size)
    predictor = Predictor(model, protocol, [f'class {i}' for i in range(model.num_classes)])
    backbone = predictor.model.backbone  # folded, channels-last: what the server steps
    step = None
    if args.runtime == 'onnxruntime':  # as tsmnet serve --runtime onnxruntime steps streams
        step = exported_step(predictor.model, args.size, args.precision,
                             calibration if args.precision == 'int8' else None, args.threads)
    rng = torch.Generator().manual_seed(1)
    frames = torch.randn(16, args.frames, 1, 3, args.size, args.size, generator=rng)
    inputs = [[f.contiguous(memory_format=torch.channels_last) if step is None else f
               for f in stream] for stream in frames]

    def bare(streams: int) -> float:
        """Seconds per frame of ``streams`` streams of one frame per step, stepped in turn:
        TSMStreams, or each stream's buffers through the exported step."""
        if step is None:
            solo = [TSMStream(backbone) for _ in range(streams)]
            start = time.perf_counter()
            with torch.inference_mode():
                for t in range(args.frames):
                    for s, stream in enumerate(solo):
                        stream.step(inputs[s][t])
            return (time.perf_counter() - start) / (streams * args.frames)
        zeros = app.state.server.online.zeros
        buffers = [list(zeros) for _ in range(streams)]
        start = time.perf_counter()
        for t in range(args.frames):
            for s in range(streams):
                buffers[s] = step([inputs[s][t], *buffers[s]])[1:]
        return (time.perf_counter() - start) / (streams * args.frames)

    config = ServeConfig(model_name=MBV2, max_streams=16, max_batch=16,
                         max_delay_ms=args.max_delay_ms,
                         stream_runtime=f'{args.runtime} {args.precision}')
    app = create_app(predictor, config, step)
    latencies: dict[str, list[float]] = {f'serve_{n}': [] for n in STREAMS}
    with BackgroundServer(app) as server:
        context = multiprocessing.get_context('spawn')
        ours, theirs = context.Pipe()
        client = context.Process(target=client_process,
                                 args=(theirs, server.ws_url, args.size, args.in_flight))
        client.start()

        def serve(streams: int) -> float:
            ours.send((streams, args.frames))
            seconds, lat = ours.recv()
            latencies[f'serve_{streams}'].extend(lat)
            return seconds / (streams * args.frames)

        candidates = {**{f'serve_{n}': (serve, n) for n in STREAMS},
                      'separate_16': (bare, 16), 'bare_1': (bare, 1)}
        for fn, n in candidates.values():  # warm-up: allocations, kernel choices, connections
            fn(n)
        for values in latencies.values():
            values.clear()
        times: dict[str, list[float]] = {k: [] for k in candidates}
        names = list(candidates)
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                fn, n = candidates[name]
                times[name].append(fn(n))
        ours.send(None)
        client.join(60)
        metrics = app.state.server.metrics
        batch_mean = metrics.batch_frames / max(metrics.batches, 1)

    ms = {k: round(1e3 * v, 2) for k, v in medians(times).items()}
    result = {
        'benchmark': 'serve',
        'frames_per_second': {k: round(1e3 / v, 1) for k, v in ms.items()},
        'ms_per_frame': ms,
        'latency_ms': {k: {'p50': round(1e3 * statistics.median(v), 2),
                           'p99': round(1e3 * quantile(sorted(v), 0.99), 2)}
                       for k, v in latencies.items()},
        'batched_vs_separate_16': {
            'speedup': round(ratio(times, 'separate_16', 'serve_16'), 3),
            'quartiles': [round(x, 3) for x in spread(times, 'separate_16', 'serve_16')],
            'target': '>= 1.5'},
        'overhead_vs_bare_1': {
            'ratio': round(ratio(times, 'serve_1', 'bare_1'), 3),
            'quartiles': [round(x, 3) for x in spread(times, 'serve_1', 'bare_1')],
            'target': '<= 1.15'},
        'mean_batch': round(batch_mean, 2),
        'runtime': args.runtime, 'precision': args.precision,
        'config': {'model': 'MobileNetV2-TSM causal, random weights made well scaled, BN folded, '
                            'channels-last',
                   'size': args.size, 'frames': args.frames, 'repeats': args.repeats,
                   'threads': args.threads, 'max_delay_ms': args.max_delay_ms,
                   'frame_format': 'raw RGB', 'in_flight': args.in_flight,
                   'torch': torch.__version__,
                   'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY'),
                   'machine': machine(), 'cpus': os.cpu_count(), 'loadavg': loadavg()},
    }
    print(to_json(result, args.output, indent=1))


if __name__ == '__main__':
    main()
