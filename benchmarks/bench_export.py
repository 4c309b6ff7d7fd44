"""Exported TSM side by side: ``python benchmarks/bench_export.py [options]``.

Latency (``--latency``, the default): per-frame latency of the online step and per-clip latency
of the clip model, batch 1, ``--size`` (224), ``--threads`` (2) threads, for causal
MobileNetV2-TSM and ResNet-50-TSM: eager PyTorch, ONNX Runtime fp32, ONNX Runtime int8
(QOperator and QDQ, U8S8 per-channel), ExecuTorch fp32 and int8 where installed.
Every candidate runs ``--calls`` calls per repeat, repeats interleaved in a rotating order;
figures are the median and p90 over all calls, ratios the median of per-repeat ratios of the
medians. ONNX Runtime's profiler splits the MobileNetV2 step's time by operator type.
The models have random weights, their batch-norm statistics set so that every layer has unit
scale on the bench's clips (:func:`_well_scaled`), the same weights for every candidate. Every
file is checked against eager by ``tsmnet.export`` (max abs diff, cosine, top-1 agreement,
logged and in the JSON); a file that fails its check is not timed (``"refused"`` in the JSON)
unless ``--time-failed``.

Accuracy (``--accuracy``): trains the online demo's causal model (``tsmnet demo --online``'s
settings) and the clip model of ``tsmnet demo``, exports each to fp32 and int8 ONNX, and
compares them over all validation clips: top-1 agreement of int8 with fp32, accuracy against
frames seen (streamed, each stream fed its own buffers), plotted to ``--plot``.

Prints JSON on the last line; ``--out`` writes it. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import tsmnet
from tsmnet.benchmark.harness import machine
from tsmnet.demo.config import DemoConfig
from tsmnet.demo.data import MotionDirection
from tsmnet.demo.online import build_causal_model
from tsmnet.demo.train import ClipClassifier, build_model, quiet_logger
from tsmnet.deploy import executorch as et
from tsmnet.deploy.calibration import normalise_unit_clips
from tsmnet.deploy.modules import as_exportable
from tsmnet.deploy.quantize import Int8Options

logger = logging.getLogger('bench_export')
MODELS = ('mobilenetv2', 'resnet50')

INT8 = {
    'int8 qoperator u8s8': Int8Options(quant_format='qoperator'),
    'int8 qdq u8s8': Int8Options(quant_format='qdq'),
}


def _session(path: Path, threads: int, profile: str | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def _ort_call(session: Any, inputs: list[torch.Tensor]):
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
    return lambda: session.run(None, feed)


def _pte_call(path: Path, inputs: list[torch.Tensor]):
    run = et.pte_runner(path)
    return lambda: run(inputs)


def _pte_threads(threads: int) -> int:
    """Give ExecuTorch's XNNPACK threadpool ``threads`` threads (it defaults to the cores)."""
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(threads)
    return portable_lib._threadpool_get_thread_count()


def _timed(candidates: dict[str, Any], repeats: int, calls: int) -> dict[str, list[list[float]]]:
    """Per-call seconds, ``[repeat][call]`` per candidate, repeats interleaved (rotating)."""
    for fn in candidates.values():  # warm up (allocation, ORT's first run)
        fn(), fn()
    names = list(candidates)
    times: dict[str, list[list[float]]] = {k: [] for k in names}
    for r in range(repeats):
        for k in names[r % len(names):] + names[:r % len(names)]:
            row = []
            for _ in range(calls):
                start = time.perf_counter()
                candidates[k]()
                row.append(time.perf_counter() - start)
            times[k].append(row)
    return times


def _summary(times: dict[str, list[list[float]]], base: str) -> dict[str, Any]:
    out = {}
    for k, rows in times.items():
        flat = sorted(x for row in rows for x in row)
        ratio = statistics.median(statistics.median(a) / statistics.median(b)
                                  for a, b in zip(rows, times[base]))
        out[k] = {'median_ms': 1e3 * statistics.median(flat),
                  'p90_ms': 1e3 * statistics.quantiles(flat, n=10, method='inclusive')[-1],
                  f'ratio_to_{base.replace(" ", "_")}': ratio}
    return out


def _op_split(session_path: Path, inputs: list[torch.Tensor], threads: int, runs: int,
              folder: Path) -> dict[str, float]:
    """Share of node time by operator type over ``runs`` runs (ONNX Runtime's profiler)."""
    session = _session(session_path, threads, profile=str(folder / session_path.stem))
    call = _ort_call(session, inputs)
    for _ in range(runs):
        call()
    events = json.loads(Path(session.end_profiling()).read_text())
    per_op: Counter[str] = Counter()
    for e in events:
        if e.get('cat') == 'Node' and e.get('name', '').endswith('_kernel_time'):
            per_op[e['args']['op_name']] += e['dur']
    total = sum(per_op.values()) or 1
    return {op: round(dur / total, 4) for op, dur in per_op.most_common()}


def _backbone(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = (tsmnet.MobileNetV2TSM(shift_mode='causal', pretrained=None) if name == 'mobilenetv2'
             else tsmnet.ResNetTSM(50, shift_mode='causal', pretrained=None))
    with quiet_logger():
        model.init_weights()
    return model.eval()


def _well_scaled(model: nn.Module, clips: torch.Tensor) -> dict[str, float]:
    """Give every batch norm a running mean of 0 and a running variance equal to its input's
    mean square on ``clips`` ``[N, T, C, H, W]``, set layer by layer in one eval-mode pass
    (each BN sees the input the earlier, already set, BNs give it); returns the largest
    |output| before and after.

    Why: with Kaiming init (fan-out mode) and identity BN statistics the activations drift
    layer by layer (MobileNetV2-TSM's features end near 1e-8: torch counts a depthwise conv's
    fan-out as if it were dense; ResNet-50-TSM's at a few hundred). int8 cannot hold 1e-8:
    torchao's PT2E observers keep a scale >= float32's eps, so such a .pte outputs zeros and
    fails its check. A scalar gain per layer to unit mean square (LSUV, Mishkin & Matas 2016)
    gives every layer unit scale and keeps Kaiming's relative weights. Per-channel statistics
    (each BN centring and scaling each channel of its input) would also give unit scale, but
    make the random network chaotic: small errors grow with depth (ONNX Runtime int8 step
    cosine 0.83 for MobileNetV2-TSM, 0.94 for ResNet-50-TSM at 64 x 64, against 0.998 here).
    The graph, and so the latency, is the same.
    """
    x = clips.flatten(0, 1)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def set_scale(bn: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        bn.running_mean.zero_()
        bn.running_var.fill_(float(inputs[0].pow(2).mean()))

    model.eval()
    with torch.no_grad():
        before = float(model(x).abs().max())
        hooks = [bn.register_forward_pre_hook(set_scale) for bn in norms]
        try:
            model(x)
        finally:
            for hook in hooks:
                hook.remove()
        after = float(model(x).abs().max())
    return {'max_abs_output_before': before, 'max_abs_output_after': after,
            'batch_norms': len(norms), 'frames': int(x.shape[0])}


def _checks(report: Any) -> dict[str, dict[str, float]]:
    return {k: {'max_abs_diff': c.max_abs_diff, 'max_abs_eager': c.max_abs_ref,
                'cosine': c.cosine, 'top1_agreement': c.top1_agreement}
            for k, c in report.checks.items()}


def bench_latency(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    pte = et.available() and not args.no_pte
    if pte:
        results['executorch_threads'] = _pte_threads(args.threads)
    for name in args.models:
        model = _backbone(name)
        unit, _ = MotionDirection(args.size, 8, seed=7).sample_pairs(max(args.calib_clips // 2, 1))
        calibration = normalise_unit_clips(unit)
        # other clips of the same distribution (seed 8): the weights are not fit to the
        # calibration or the checks
        scale = _well_scaled(model, normalise_unit_clips(
            MotionDirection(args.size, 8, seed=8).sample(2)[0]))
        logger.info('%s: batch norms re-estimated, max |output| %.3g -> %.3g', name,
                    scale['max_abs_output_before'], scale['max_abs_output_after'])
        ex = as_exportable(model)
        clip = calibration[:1]
        frame = clip[:, 0].contiguous()
        entry: dict[str, Any] = {'weights': scale, 'exports': {}, 'refused': [],
                                 'timed_failed': []}
        for kind in ('step', 'clip'):
            example = frame if kind == 'step' else clip
            files: dict[str, Path] = {}
            checked: dict[str, Any] = {}
            formats = [('ort fp32', 'onnx', None)] + [(k, 'onnx-int8', o) for k, o in INT8.items()
                                                      if kind == 'step' or 'qoperator' in k]
            if pte and name in args.pte_models:
                formats += [('executorch fp32', 'pte', None),
                            ('executorch int8', 'pte-int8', None)]
            for label, fmt, options in formats:
                suffix = '.pte' if 'pte' in fmt else '.onnx'
                path = folder / f'{name}_{kind}_{label.replace(" ", "_")}{suffix}'
                start = time.perf_counter()
                report = tsmnet.export(model, path, kind=kind, format=fmt, example=example,
                                       calibration=calibration if 'int8' in fmt else None,
                                       int8=options)
                entry['exports'][f'{kind} {label}'] = {
                    'seconds': round(time.perf_counter() - start, 1), 'ok': report.ok,
                    'checks': _checks(report)}
                for line in report.lines():
                    logger.info('%s %s %s: %s', name, kind, label, line.strip())
                checked[label] = report
                if report.ok or args.time_failed:
                    files[label] = path
                if not report.ok:  # a file that does not compute the model is not a candidate
                    entry['timed_failed' if args.time_failed else 'refused'].append(
                        f'{kind} {label}')
                    logger.warning('%s %s %s FAILED its check (%s); %s', name, kind, label,
                                   report.bound, 'timed anyway (--time-failed)'
                                   if args.time_failed else 'not timed')
            if 'ort fp32' not in files:
                raise RuntimeError(f'{name} {kind}: the ONNX Runtime fp32 file failed its check; '
                                   f'it is the base of every ratio')
            if kind == 'step':
                stream = tsmnet.TSMStream(model)
                stream.step(frame)
                buffers = ex.zero_buffers(frame)
                inputs = [frame, *buffers]
                candidates = {'eager': lambda s=stream, x=frame: s.step(x)}
            else:
                inputs = [clip]
                module = ex.clip_module

                def eager_clip(m=module, x=clip) -> None:
                    with torch.no_grad():
                        m(x)
                candidates = {'eager': eager_clip}
            for label, path in files.items():
                candidates[label] = (_pte_call(path, inputs) if path.suffix == '.pte'
                                     else _ort_call(_session(path, args.threads), inputs))
            times = _timed(candidates, args.repeats, args.calls if kind == 'step'
                           else max(args.calls // 4, 2))
            entry[kind] = _summary(times, 'ort fp32')
            for label, report in checked.items():  # each timed file's own check beside it
                if label in entry[kind]:
                    entry[kind][label].update(
                        check_ok=report.ok,
                        min_cosine=min(c.cosine for c in report.checks.values()),
                        min_top1_agreement=report.top1_agreement,
                        max_abs_diff=report.max_abs_diff)
            if kind == 'step' and name == 'mobilenetv2':
                entry['step_op_split'] = {
                    label: _op_split(files[label], inputs, args.threads, 50, folder)
                    for label in ('ort fp32', 'int8 qoperator u8s8', 'int8 qdq u8s8')
                    if label in files}
        results[name] = entry
    return results


def _recognizer(model: ClipClassifier, num_segments: int) -> tsmnet.Recognizer:
    """The demo's classifier as a :class:`tsmnet.Recognizer` (the same backbone and linear
    layer; its input normalisation, ``(x - mean) / std``, is done on the clips instead)."""
    head = tsmnet.TSMHead(model.fc.out_features, model.fc.in_features,
                          num_segments=num_segments, dropout_ratio=0.0)
    head.fc_cls = model.fc
    return tsmnet.Recognizer(model.backbone, head).eval()


def _train(model: nn.Module, data: MotionDirection, cfg: DemoConfig) -> nn.Module:
    """The demo's training loop (AdamW, one-cycle), ``cfg.steps`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                    total_steps=cfg.steps, pct_start=0.15)
    for _ in range(cfg.steps):
        clips, labels = data.sample(cfg.batch_size)
        model.train()
        loss = nn.functional.cross_entropy(model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model.eval()


def bench_accuracy(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    cfg = DemoConfig()
    out: dict[str, Any] = {'config': vars(cfg).copy()}
    # the online demo: a causal ResNet-18-TSM on wrapped clips, streamed
    train = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed, wrap=True)
    val = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed + 1_000_003, wrap=True)
    val_clips, val_labels = val.sample_pairs(cfg.val_pairs)
    demo = _train(build_causal_model(cfg, train.num_classes), train, cfg)
    model = _recognizer(demo, cfg.num_segments)
    val_clips = (val_clips - demo.mean) / demo.std
    calibration = (MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed + 7,
                                   wrap=True).sample(32)[0] - demo.mean) / demo.std
    online: dict[str, Any] = {}
    scores_by_format = {}
    for fmt in ('onnx', 'onnx-int8'):
        path = folder / f'online_{fmt}.onnx'
        report = tsmnet.export(model, path, kind='step', format=fmt, example=val_clips[:1, 0],
                               calibration=[calibration] if fmt == 'onnx-int8' else None)
        session = _session(path, args.threads)
        names = [i.name for i in session.get_inputs()]
        buffers = [b.numpy() for b in as_exportable(model).zero_buffers(val_clips[:, 0])]
        total, accuracy, frame_scores = 0.0, [], []
        for t in range(cfg.num_segments):
            res = session.run(None, dict(zip(names, [val_clips[:, t].numpy(), *buffers])))
            buffers = res[1:]
            total = total + torch.from_numpy(res[0])
            frame_scores.append(total.argmax(1))
            accuracy.append(float((total.argmax(1) == val_labels).float().mean()))
        scores_by_format[fmt] = frame_scores
        online[fmt] = {'accuracy_by_frames_seen': accuracy, 'export_ok': report.ok}
    agree = [float((a == b).float().mean()) for a, b in zip(scores_by_format['onnx'],
                                                             scores_by_format['onnx-int8'])]
    online['int8_top1_agreement_with_fp32'] = agree[-1]
    online['int8_top1_agreement_by_frames_seen'] = agree
    online['streams'] = len(val_labels)
    out['online'] = online
    # the clip model of `tsmnet demo`: a bidirectional ResNet-18-TSM on whole clips
    torch.manual_seed(cfg.seed)
    clip_train = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed)
    clip_val = MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed + 1_000_003)
    cval, clab = clip_val.sample_pairs(cfg.val_pairs)
    clip_demo = _train(build_model(cfg, True, clip_train.num_classes), clip_train, cfg)
    clip_model = _recognizer(clip_demo, cfg.num_segments)
    cval = (cval - clip_demo.mean) / clip_demo.std
    ccal = (MotionDirection(cfg.size, cfg.num_segments, seed=cfg.seed + 7).sample(32)[0]
            - clip_demo.mean) / clip_demo.std
    clip_out: dict[str, Any] = {}
    preds = {}
    for fmt in ('onnx', 'onnx-int8'):
        path = folder / f'clip_{fmt}.onnx'
        tsmnet.export(clip_model, path, kind='clip', format=fmt, example=cval[:1],
                      calibration=[ccal] if fmt == 'onnx-int8' else None)
        session = _session(path, args.threads)
        preds[fmt] = torch.from_numpy(session.run(None, {'clips': cval.numpy()})[0]).argmax(1)
        clip_out[fmt] = {'accuracy': float((preds[fmt] == clab).float().mean())}
    clip_out['int8_top1_agreement_with_fp32'] = float((preds['onnx'] == preds['onnx-int8'])
                                                      .float().mean())
    clip_out['clips'] = len(clab)
    out['clip'] = clip_out
    if args.plot:
        _plot(out, Path(args.plot))
    return out


def _plot(out: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    online = out['online']
    frames = np.arange(1, len(online['onnx']['accuracy_by_frames_seen']) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(frames, online['onnx']['accuracy_by_frames_seen'], 'o-', label='online step, fp32')
    ax.plot(frames, online['onnx-int8']['accuracy_by_frames_seen'], 's--',
            label='online step, int8')
    clip = out['clip']
    ax.scatter([frames[-1]], [clip['onnx']['accuracy']], marker='^', s=60,
               label=f'clip model, fp32 ({100 * clip["onnx"]["accuracy"]:.1f}%)')
    ax.scatter([frames[-1]], [clip['onnx-int8']['accuracy']], marker='v', s=60,
               label=f'clip model, int8 ({100 * clip["onnx-int8"]["accuracy"]:.1f}%)')
    ax.axhline(0.5, color='grey', lw=0.8, ls=':')
    ax.set_xlabel('frames seen')
    ax.set_ylabel('validation accuracy')
    ax.set_title(f'ONNX Runtime fp32 vs int8 ({online["streams"]} streams; int8 agrees with '
                 f'fp32 on {100 * online["int8_top1_agreement_with_fp32"]:.1f}%)', fontsize=9)
    ax.set_ylim(0.4, 1.02)
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        help=f'models to time, of {", ".join(MODELS)} (spaces or commas)')
    parser.add_argument('--pte-models', nargs='+', default=['mobilenetv2'],
                        help='models also exported to ExecuTorch (slow to lower)')
    parser.add_argument('--no-pte', action='store_true')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--calls', type=int, default=20)
    parser.add_argument('--calib-clips', type=int, default=8)
    parser.add_argument('--time-failed', action='store_true',
                        help='time files that fail their check too (flagged in the JSON)')
    parser.add_argument('--accuracy', action='store_true', help='the accuracy part only')
    parser.add_argument('--plot', default=None)
    parser.add_argument('--out', default=None)
    args = parser.parse_args()
    for option in ('models', 'pte_models'):
        names = [n for value in getattr(args, option) for n in value.split(',') if n]
        unknown = sorted(set(names) - set(MODELS))
        if unknown:
            parser.error(f'--{option.replace("_", "-")}: unknown model(s) {", ".join(unknown)}; '
                         f'expected some of {", ".join(MODELS)}')
        setattr(args, option, names)
    logging.basicConfig(level=logging.WARNING, format='%(asctime)s %(name)s: %(message)s')
    logger.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {'machine': machine(torch.device('cpu')),
                              'threads': args.threads, 'size': args.size,
                              'torch': torch.__version__}
    import onnxruntime

    report['onnxruntime'] = onnxruntime.__version__
    report['load_average_at_start'] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix='bench-export.') as tmp:
        if args.accuracy:
            report['accuracy'] = bench_accuracy(args, Path(tmp))
        else:
            report['latency'] = bench_latency(args, Path(tmp))
    report['load_average_at_end'] = os.getloadavg()
    text = json.dumps(report)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + '\n')
    print(text)


if __name__ == '__main__':
    main()
