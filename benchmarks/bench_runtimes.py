"""CPU runtimes side by side: ``python benchmarks/bench_runtimes.py [options]``.

Per-clip latency of a recognizer's clip model (``[1, T=8, 3, size, size]``, batch 1,
``--threads`` threads) of ResNet-50-TSM and MobileNetV2-TSM under every runtime of
:mod:`tsmnet.deploy.runtime` (the library's ``clip_runner``): eager fp32, ``torch.compile``
fp32, ONNX Runtime fp32 and int8, OpenVINO fp32, bf16 and int8, torchao x86 int8
(``tsmnet.quantize``); each with its cosine and top-1 agreement against eager fp32 on
``--check`` clips (batches of 8).

Weights (``--weights``): ``demo`` (default) trains the recognizer (2 classes) on the demo's
task (:class:`tsmnet.demo.MotionDirection`, the direction of motion, which only temporal
reasoning solves) for ``--train-steps`` AdamW steps at ``--train-size``, kept in ``--cache`` for
the next run, and checks on the demo's clips at ``--size`` (its accuracy there is reported);
``random``: random weights made well scaled (``bench_export._well_scaled``) and 400 classes,
checked on smooth random clips. int8 is calibrated on clips of the check distribution
(another seed; ``--calibration`` clips). Repeats interleaved
(:func:`tsmnet.benchmark.harness.interleaved`, one call each, after a warm-up call); figures
are medians, ratios the median of per-repeat ratios to eager. Prints JSON on the last line.
Never collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_export import _well_scaled
from torch import nn

import tsmnet
from tsmnet.benchmark.harness import Timer, interleaved, loadavg, machine, medians, ratio
from tsmnet.demo import MotionDirection
from tsmnet.deploy.calibration import smooth_clips
from tsmnet.deploy.runtime import clip_runner
from tsmnet.deploy.verify import compare

# name: (runtime, precision, exported format or None)
RUNTIMES: dict[str, tuple[str, str, str | None]] = {
    'eager': ('eager', 'fp32', None), 'compile': ('compile', 'fp32', None),
    'ort-fp32': ('onnxruntime', 'fp32', 'onnx'), 'ort-int8': ('onnxruntime', 'int8', 'onnx-int8'),
    'openvino-fp32': ('openvino', 'fp32', 'openvino'),
    'openvino-bf16': ('openvino', 'bf16', 'openvino'),
    'openvino-int8': ('openvino', 'int8', 'openvino-int8'),
    'torchao-int8': ('compile', 'int8', None)}
T = 8
MEAN, STD = 0.45, 0.25  # the demo's normalisation


def _recognizer(name: str, num_classes: int) -> tsmnet.Recognizer:
    torch.manual_seed(0)
    if name == 'mobilenetv2':
        backbone: nn.Module = tsmnet.MobileNetV2TSM(num_segments=T, pretrained=None)
        channels = 1280
    else:
        backbone = tsmnet.ResNetTSM(50, num_segments=T, pretrained=None)
        channels = 2048
    head = tsmnet.TSMHead(num_classes, channels, num_segments=T)
    nn.init.normal_(head.fc_cls.weight, std=0.01)
    return tsmnet.Recognizer(backbone, head)


def _demo_clips(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    clips, labels = MotionDirection(size=size, num_frames=T, seed=seed).sample(n)
    return (clips - MEAN) / STD, labels


@torch.enable_grad()  # main measures under no_grad
def _train(model: tsmnet.Recognizer, steps: int, size: int, batch: int = 8) -> list[float]:
    """AdamW with a one-cycle schedule on the demo's clips; returns the losses."""
    data = MotionDirection(size=size, num_frames=T, seed=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-3, total_steps=steps)
    losses = []
    model.train()
    torch.set_flush_denormal(True)  # converged gradients go denormal (demo.train)
    for _ in range(steps):
        clips, labels = data.sample(batch)
        loss = nn.functional.cross_entropy(model((clips - MEAN) / STD), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(round(float(loss), 4))
        if len(losses) % 10 == 0:
            logging.getLogger(__name__).warning('step %d: loss %.4f', len(losses), losses[-1])
    torch.set_flush_denormal(False)
    return losses


def _model(name: str, args: argparse.Namespace) -> tuple[tsmnet.Recognizer, dict[str, Any],
                                                         torch.Tensor, list[torch.Tensor]]:
    """The recognizer, what its weights are, the check clips and the calibration clips."""
    size = (args.size, args.size)
    if args.weights == 'random':
        model = _recognizer(name, 400)
        calib = [smooth_clips(1, T, 3, size, seed=s) for s in range(args.calibration)]
        _well_scaled(model.backbone, torch.cat(calib))
        checks = smooth_clips(args.check, T, 3, size, seed=100)
        return model.eval(), {'weights': 'random, well scaled'}, checks, calib
    model = _recognizer(name, 2)
    path = Path(args.cache) / f'{name}-demo-{args.train_steps}-{args.train_size}.pt'
    info: dict[str, Any] = {'weights': f'trained on the demo task: {args.train_steps} steps of '
                                       f'8 clips at {args.train_size}', 'cache': str(path)}
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        tic = time.perf_counter()
        info['losses'] = _train(model, args.train_steps, args.train_size)
        info['train_s'] = round(time.perf_counter() - tic, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    model.eval()
    checks, labels = _demo_clips(args.check, args.size, seed=100)
    calib = list(_demo_clips(args.calibration, args.size, seed=200)[0].split(1))
    with torch.no_grad():
        predicted = torch.cat([model(c) for c in checks.split(8)]).argmax(1)
    info['accuracy_at_size'] = float((predicted == labels).float().mean())
    return model, info, checks, calib


def _runners(model: tsmnet.Recognizer, names: list[str], calib: list[torch.Tensor],
             threads: int, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    runners: dict[str, Any] = {}
    exports: dict[str, Any] = {}
    for name in names:
        runtime, precision, fmt = RUNTIMES[name]
        tic = time.perf_counter()
        if fmt is None:
            runners[name] = clip_runner(model, runtime, precision,
                                        calibration=calib if precision == 'int8' else None)
        else:
            path = folder / f'clip-{fmt}{".xml" if fmt.startswith("openvino") else ".onnx"}'
            if not path.exists():
                report = tsmnet.export(model, path, format=fmt, example=calib[0],
                                       calibration=calib if fmt.endswith('int8') else None)
                exports[fmt] = {'ok': report.ok, 'cosine': round(min(
                    c.cosine for c in report.checks.values()), 6)}
            runners[name] = clip_runner(path, runtime, precision, threads=threads)
        logging.getLogger(__name__).warning('%s ready in %.0f s', name,
                                            time.perf_counter() - tic)
    return runners, exports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', default='resnet50')
    parser.add_argument('--runtimes', default=','.join(RUNTIMES))
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--check', type=int, default=32, help='clips to compare on')
    parser.add_argument('--calibration', type=int, default=8, help='int8 calibration clips')
    parser.add_argument('--weights', choices=('demo', 'random'), default='demo')
    parser.add_argument('--train-steps', type=int, default=150)
    parser.add_argument('--train-size', type=int, default=64)
    parser.add_argument('--cache', default='/tmp/tsmnet-bench-runtimes')
    parser.add_argument('--settle', type=float, default=0.5,
                        help='seconds idle before each timed call, so that the runtime timed '
                             "before has its spinning threads asleep (default: 0.5)")
    parser.add_argument('--out', help='also write the JSON here')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    names = args.runtimes.split(',')
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown:
        parser.error(f'--runtimes: unknown {unknown}; expected some of {list(RUNTIMES)}')
    report: dict[str, Any] = {'machine': machine(), 'threads': args.threads, 'size': args.size,
                              'T': T, 'repeats': args.repeats, 'settle_s': args.settle,
                              'load_before': loadavg(),
                              'models': {}}
    with tempfile.TemporaryDirectory(prefix='bench-runtimes.') as tmp, torch.no_grad():
        for name in args.models.split(','):
            model, info, checks, calib = _model(name, args)
            folder = Path(tmp) / name
            folder.mkdir()
            runners, exports = _runners(model, names, calib, args.threads, folder)
            ref = [model(c) for c in checks.split(8)]
            accuracy = {}
            for rt, run in runners.items():
                c = compare(ref, [run(x) for x in checks.split(8)])
                accuracy[rt] = {'precision': run.precision, 'cosine': round(c.cosine, 6),
                                'top1_agreement': c.top1_agreement, 'rows': c.rows}
            x = checks[:1]
            for run in runners.values():  # warm-up (compiles, first allocations)
                run(x)
            times = interleaved(Timer(), {rt: (lambda run=run, x=x: run(x))
                                          for rt, run in runners.items()},
                                args.repeats, inner=1, settle_s=args.settle)
            report['models'][name] = {
                **info, 'exports': exports,
                'median_ms': {k: round(v * 1e3, 1) for k, v in medians(times).items()},
                'vs_eager': ({k: round(ratio(times, k, 'eager'), 3) for k in times}
                             if 'eager' in times else {}),
                'accuracy': accuracy}
            print(json.dumps({name: report['models'][name]}), flush=True)
    report['load_after'] = loadavg()
    text = json.dumps(report)
    if args.out:
        Path(args.out).write_text(text + '\n')
    print(text)


if __name__ == '__main__':
    main()
