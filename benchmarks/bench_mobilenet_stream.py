"""MobileNetV2-TSM streaming cost: the stream step against a plain MobileNetV2 on one frame,
and the step exported to ONNX and run in onnxruntime against eager PyTorch.

One stream (``N = 1``), frames ``[1, 3, S, S]``. Per repeat, each variant processes the same
``--frames`` frames one at a time; variants run in alternating order from repeat to repeat
(interleaved, so that a slow phase of a shared machine hits all of them). Figures are medians
over repeats of the per-repeat ratios (and the per-frame times of each, with frames per
second). Variants:

* ``step``: ``TSMStream(MobileNetV2TSM(shift_mode='causal')).step`` in eager PyTorch;
* ``plain``: a plain ``MobileNetV2`` of the same weights, one frame (no shift, no buffers);
* ``onnx_step``: ``TSMStream.export_onnx`` run in onnxruntime, the 10 buffers fed back;
* ``onnx_plain``: the plain MobileNetV2 exported and run in onnxruntime.

Prints JSON.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_mobilenet_stream.py --threads 2
    python benchmarks/bench_mobilenet_stream.py --size 112 --repeats 5 --output out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from mmengine.logging import MMLogger

from tsmnet import MobileNetV2, MobileNetV2TSM
from tsmnet.fileio import write_text
from tsmnet.stream import TSMStream


def _median_ratio(a: list[float], b: list[float]) -> float:
    return round(statistics.median(x / y for x, y in zip(a, b)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--frames', type=int, default=8, help='frames per repeat')
    parser.add_argument('--repeats', type=int, default=11)
    parser.add_argument('--threads', type=int, default=2, help='torch and onnxruntime threads')
    parser.add_argument('--no-onnx', action='store_true', help='skip the onnxruntime variants')
    parser.add_argument('--output', help='also write the JSON to this file')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = MobileNetV2TSM(num_segments=8, shift_mode='causal')
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights logs every key
    model.init_weights()
    model.eval()
    plain = MobileNetV2().eval()
    plain.load_state_dict({k.replace('.net.', '.'): v for k, v in model.state_dict().items()})
    frames = torch.randn(args.frames, 1, 3, args.size, args.size)
    stream = TSMStream(model)

    def step() -> None:
        for frame in frames:
            stream.step(frame)

    def plain_frames() -> None:
        for frame in frames:
            plain(frame)

    variants: dict[str, Callable[[], None]] = {'step': step, 'plain': plain_frames}
    if not args.no_onnx:
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        folder = Path(tempfile.mkdtemp(prefix='tsmnet_bench_'))
        names, _ = stream.export_onnx(folder / 'step.onnx', frames[0], dynamic_streams=False)
        step_session = ort.InferenceSession(str(folder / 'step.onnx'), options,
                                            providers=['CPUExecutionProvider'])
        zeros = [b.numpy() for b in stream.zero_buffers(frames[0])]
        torch.onnx.export(plain, (frames[0],), str(folder / 'plain.onnx'), dynamo=True,
                          input_names=['frames'], output_names=['features'], verbose=False)
        plain_session = ort.InferenceSession(str(folder / 'plain.onnx'), options,
                                             providers=['CPUExecutionProvider'])
        inputs = [np.ascontiguousarray(f.numpy()) for f in frames]

        def onnx_step() -> None:
            buffers = zeros
            for x in inputs:
                out = step_session.run(None, dict(zip(names, [x, *buffers])))
                buffers = out[1:]

        def onnx_plain() -> None:
            for x in inputs:
                plain_session.run(None, {'frames': x})

        variants.update(onnx_step=onnx_step, onnx_plain=onnx_plain)

    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.no_grad():
        for fn in variants.values():  # warm-up (allocates the stream's buffers)
            fn()
        order = list(variants.items())
        for r in range(args.repeats):
            for name, fn in (order if r % 2 == 0 else order[::-1]):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) / args.frames)

    ms = {name: round(1e3 * statistics.median(t), 2) for name, t in times.items()}
    result = {
        'benchmark': 'mobilenet_v2_stream',
        'figure': 'MobileNetV2-TSM stream step / plain MobileNetV2 on one frame',
        'step_vs_plain': _median_ratio(times['step'], times['plain']),
        'target': 1.10,
        'ms_per_frame': ms,
        'frames_per_second': {name: round(1e3 / v, 1) for name, v in ms.items()},
        'config': {'size': args.size, 'frames': args.frames, 'repeats': args.repeats,
                   'threads': args.threads, 'streams': 1, 'shift_sites': stream.num_sites,
                   'torch': torch.__version__,
                   'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY'),
                   'machine': platform.machine(), 'cpus': os.cpu_count()},
    }
    if 'onnx_step' in times:
        import onnxruntime as ort

        result['onnx_step_vs_eager_step'] = _median_ratio(times['onnx_step'], times['step'])
        result['onnx_step_vs_onnx_plain'] = _median_ratio(times['onnx_step'],
                                                          times['onnx_plain'])
        result['config']['onnxruntime'] = ort.__version__
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        write_text(args.output, text + '\n')  # atomic: a failed write keeps the old file


if __name__ == '__main__':
    main()
