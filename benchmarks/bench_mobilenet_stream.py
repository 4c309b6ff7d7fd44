"""MobileNetV2-TSM streaming cost: the stream step against a plain MobileNetV2 on one frame,
and the step exported to ONNX and run in onnxruntime against eager PyTorch.

One stream (``N = 1``), frames ``[1, 3, S, S]``. Per repeat, each variant processes the same
``--frames`` frames one at a time; the order of the variants rotates from repeat to repeat
(interleaved by :func:`tsmnet.benchmark.frame_times`, so that a slow phase of a shared machine
hits all of them). Figures are medians
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
import logging
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from mmengine.logging import MMLogger

from tsmnet import MobileNetV2, MobileNetV2TSM
from tsmnet.benchmark import Timer, frame_times, medians, ratio, to_json
from tsmnet.stream import TSMStream


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
        # ONNX Runtime's threads spin after each run by default, taking the cores from the
        # eager variant timed next: the eager figures would measure that, not the step
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
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

    with torch.no_grad():
        times = frame_times(Timer(), variants, frames=args.frames, repeats=args.repeats)

    ms = {name: round(1e3 * s, 2) for name, s in medians(times).items()}
    result = {
        'benchmark': 'mobilenet_v2_stream',
        'figure': 'MobileNetV2-TSM stream step / plain MobileNetV2 on one frame',
        'step_vs_plain': round(ratio(times, 'step', 'plain'), 4),
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

        result['onnx_step_vs_eager_step'] = round(ratio(times, 'onnx_step', 'step'), 4)
        result['onnx_step_vs_onnx_plain'] = round(ratio(times, 'onnx_step', 'onnx_plain'), 4)
        result['config']['onnxruntime'] = ort.__version__
    print(to_json(result, args.output, indent=2))  # atomic: a failed write keeps the old file


if __name__ == '__main__':
    main()
