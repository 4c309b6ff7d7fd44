"""MobileOne-S4-TSM's deploy form against its training form and ResNet-50-TSM, side by side:
``python benchmarks/bench_mobileone.py [--threads 2] [--size 224] [--repeats 5] [--no-int8]``.

The three recognizers of the zoo (``create_model``; T=16 clips, batch 1, ``--size`` frames):
MobileOne-S4-TSM in training form (branches), in deploy form (each block one conv, the
``_deploy_`` twin) and ResNet-50-TSM 1x1x16. Each runs in eager PyTorch and in ONNX Runtime
fp32 (``tsmnet.export``, which checks the file against eager); the deploy form also in ONNX
Runtime static int8 (QOperator U8S8) unless ``--no-int8``. Random weights whose batch-norm
statistics are those of one clip (so that every layer is well scaled and the exported files
pass their checks); the deploy form is folded from the training form's weights.
Each candidate runs once to warm up, then one call per repeat, repeats interleaved
(:mod:`tsmnet.benchmark.harness`); ratios are medians of per-repeat
ratios with their quartiles. Prints JSON on the last line. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

import tsmnet
from tsmnet.benchmark.harness import (
    Timer,
    interleaved,
    loadavg,
    machine,
    medians,
    pinned_threads,
    ratio,
    spread,
    to_json,
)
from tsmnet.deploy.quantize import Int8Options

MOBILEONE = 'tsm_imagenet-pretrained-mobileone-s4_8xb16-1x1x16-50e_kinetics400-rgb'
MOBILEONE_DEPLOY = 'tsm_imagenet-pretrained-mobileone-s4_deploy_8xb16-1x1x16-50e_kinetics400-rgb'
R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_kinetics400-rgb'
T = 16


def _calibrated(model: nn.Module, clip: torch.Tensor) -> nn.Module:
    """``model`` in eval mode with batch-norm statistics measured on ``clip``."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: exactly this clip's statistics
    with torch.no_grad():
        model.train()(clip)
    return model.eval()


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--no-int8', action='store_true')
    parser.add_argument('--models', default='mobileone training,mobileone deploy,resnet50',
                        help='which of the three to run (comma-separated)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    clip = torch.randn(1, T, 3, args.size, args.size)
    training = _calibrated(tsmnet.create_model(MOBILEONE), clip)
    deploy = tsmnet.create_model(MOBILEONE_DEPLOY)
    deploy.load_checkpoint(training.state_dict())  # folded on load (Recognizer.load_checkpoint)
    deploy.eval()
    resnet = _calibrated(tsmnet.create_model(R50), clip) if 'resnet50' in args.models else None
    models = {'mobileone training': training, 'mobileone deploy': deploy,
              'resnet50': resnet}
    models = {k: m for k, m in models.items() if k in args.models.split(',')}
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}

    checks: dict[str, Any] = {}
    candidates: dict[str, Any] = {}
    with pinned_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            candidates[f'{name} eager'] = lambda m=model: m(clip)
        formats = [(name, 'onnx') for name in models]
        if not args.no_int8 and 'mobileone deploy' in models:
            formats.append(('mobileone deploy', 'onnx-int8'))
        for name, fmt in formats:
            path = Path(tmp) / f'{name.replace(" ", "_")}_{fmt}.onnx'
            kwargs: dict[str, Any] = {}
            if fmt == 'onnx-int8':
                kwargs = dict(calibration=clip, int8=Int8Options(quant_format='qoperator'))
            report = tsmnet.export(models[name], path, format=fmt, example=clip, **kwargs)
            label = f'{name} ort {"int8" if fmt.endswith("int8") else "fp32"}'
            checks[label] = dict(ok=report.ok, max_abs_diff=report.max_abs_diff,
                                 cosine=round(min(c.cosine for c in report.checks.values()), 6),
                                 top1_agreement=report.top1_agreement, bound=report.bound)
            session = _session(path, args.threads)
            feed = {session.get_inputs()[0].name: clip.numpy()}
            candidates[label] = lambda s=session, f=feed: s.run(None, f)
        with torch.inference_mode():
            for fn in candidates.values():  # one warm-up call each (a call takes seconds)
                fn()
            times = interleaved(Timer(), candidates, args.repeats, inner=1)

    pairs = [('mobileone deploy eager', 'mobileone training eager'),
             ('mobileone deploy eager', 'resnet50 eager'),
             ('mobileone deploy ort fp32', 'mobileone training ort fp32'),
             ('mobileone deploy ort fp32', 'resnet50 ort fp32'),
             ('mobileone deploy ort fp32', 'mobileone deploy eager')]
    if not args.no_int8:
        pairs += [('mobileone deploy ort int8', 'mobileone deploy eager'),
                  ('mobileone deploy ort int8', 'mobileone deploy ort fp32'),
                  ('mobileone deploy ort int8', 'mobileone training eager')]
    report = dict(
        bench='mobileone', machine=machine(), threads=args.threads, size=args.size,
        clip=list(clip.shape), repeats=args.repeats, loadavg=loadavg(), parameters=params,
        median_ms={k: round(1e3 * v, 1) for k, v in medians(times).items()},
        ratios={f'{a} / {b}': dict(median=round(ratio(times, a, b), 3),
                                   quartiles=[round(q, 3) for q in spread(times, a, b)])
                for a, b in pairs if a in times and b in times},
        checks=checks)
    print(to_json(report, args.out))


if __name__ == '__main__':
    main()
