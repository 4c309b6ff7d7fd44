"""CPU runtimes side by side: ``python benchmarks/bench_runtimes.py [options]``.

Per-clip latency of the clip model (``[1, T=8, 3, size, size]``, batch 1, ``--threads``
threads) of MobileNetV2-TSM and ResNet-50-TSM: eager fp32, ``torch.compile`` fp32, ONNX Runtime
fp32 and int8, OpenVINO fp32, bf16 and int8, torchao x86 int8 (``tsmnet.quantize``); each
with its cosine and top-1 agreement (top channel of the pooled features) against eager fp32
on ``--check`` clips. Random weights made well scaled (``bench_export._well_scaled``: unit
scale in every layer), the same for every runtime; int8 calibrated on 4 smooth random clips.
Repeats interleaved (:func:`tsmnet.benchmark.harness.interleaved`, one call each); figures
are medians, ratios the median of per-repeat ratios to eager. Prints JSON on the last line.
Never collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from bench_export import _well_scaled

import tsmnet
from tsmnet.benchmark.harness import Timer, interleaved, loadavg, machine, medians, ratio
from tsmnet.deploy.calibration import smooth_clips
from tsmnet.deploy.modules import as_exportable
from tsmnet.deploy.openvino import openvino_runner
from tsmnet.deploy.verify import compare, onnx_runner

RUNTIMES = ('eager', 'compile', 'ort-fp32', 'ort-int8', 'openvino-fp32', 'openvino-bf16',
            'openvino-int8', 'torchao-int8')
T = 8


def _backbone(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == 'mobilenetv2':
        return tsmnet.MobileNetV2TSM(num_segments=T, pretrained=None)
    return tsmnet.ResNetTSM(50, num_segments=T, pretrained=None)


def _runners(name: str, runtimes: list[str], size: int, threads: int, folder: Path
             ) -> tuple[dict[str, Any], Any]:
    backbone = _backbone(name)
    calib = [smooth_clips(1, T, 3, (size, size), seed=s) for s in range(4)]
    _well_scaled(backbone, torch.cat(calib))
    clip = as_exportable(backbone).clip_module
    runners: dict[str, Any] = {}
    for rt in runtimes:
        if rt == 'eager':
            runners[rt] = clip
        elif rt == 'compile':
            runners[rt] = torch.compile(clip)
        elif rt.startswith('ort'):
            path = folder / f'{name}-{rt}.onnx'
            fmt = 'onnx-int8' if rt.endswith('int8') else 'onnx'
            tsmnet.export(backbone, path, kind='clip', format=fmt, example=calib[0],
                          calibration=calib if fmt == 'onnx-int8' else None)
            run = onnx_runner(str(path), threads)
            runners[rt] = lambda x, run=run: run([x])[0]
        elif rt.startswith('openvino'):
            fmt = 'openvino-int8' if rt.endswith('int8') else 'openvino'
            path = folder / f'{name}-{fmt}.xml'
            if not path.exists():
                tsmnet.export(backbone, path, kind='clip', format=fmt, example=calib[0],
                              calibration=calib if fmt.endswith('int8') else None)
            run = openvino_runner(path, 'bf16' if rt.endswith('bf16') else 'f32', threads)
            runners[rt] = lambda x, run=run: run([x])[0]
        elif rt == 'torchao-int8':
            runners[rt] = tsmnet.quantize(backbone, calib, backend='x86')
    return runners, clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', default='mobilenetv2,resnet50')
    parser.add_argument('--runtimes', default=','.join(RUNTIMES))
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--check', type=int, default=4, help='clips to compare on')
    parser.add_argument('--out', help='also write the JSON here')
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    runtimes = args.runtimes.split(',')
    report: dict[str, Any] = {'machine': machine(), 'threads': args.threads, 'size': args.size,
                              'T': T, 'repeats': args.repeats, 'weights': 'random, well scaled',
                              'load_before': loadavg(), 'models': {}}
    with tempfile.TemporaryDirectory(prefix='bench-runtimes.') as tmp, torch.no_grad():
        for name in args.models.split(','):
            runners, clip = _runners(name, runtimes, args.size, args.threads, Path(tmp))
            checks = smooth_clips(args.check, T, 3, (args.size, args.size), seed=100)
            accuracy = {}
            for rt, run in runners.items():
                ref = [clip(checks[i:i + 1]) for i in range(args.check)]
                got = [run(checks[i:i + 1]) for i in range(args.check)]
                c = compare(ref, got)
                accuracy[rt] = {'cosine': round(c.cosine, 6),
                                'top1_agreement': c.top1_agreement, 'rows': c.rows}
            x = checks[:1]
            times = interleaved(Timer(), {rt: (lambda run=run, x=x: run(x))
                                          for rt, run in runners.items()},
                                args.repeats, inner=1)
            report['models'][name] = {
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
