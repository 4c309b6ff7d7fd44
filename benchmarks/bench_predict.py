"""``tsmnet predict`` against MMAction2's ``inference_recognizer``: ``python
benchmarks/bench_predict.py [--crops 10] [--repeats 3] [--threads 2] [--batch N] [--runtime
openvino [--precision bf16 | --precision int8 --calibration 4]]``; and over
many videos, decoding in workers against the model alone: ``python benchmarks/bench_predict.py
--videos 50 [--workers 2] [--crops 1]``.

One video (written here: 10 s, 30 fps, 340x256 H.264, like a resized Kinetics clip), one
config (MMAction2's R50 Kinetics-400 TSM config, 8 segments x 10 crops), one checkpoint
(random weights saved in MMAction2's layout) for both. Each repeat runs MMAction2's
``init_recognizer`` model through ``inference_recognizer``'s own steps (its test pipeline:
decord, ``Resize``, ``TenCrop``, ``FormatShape``; then ``test_step``: data preprocessor and
model) and ``tsmnet predict``'s own ``Predictor`` call on the file (PyAV decoding of the
sampled frames, the transforms, the recognizer with its batch norms folded, channels-last,
``--batch`` views per pass, default ``tsmnet predict``'s), timed by the stages it reports,
in alternating order; the ratio is the median of the per-repeat ratios. Each stage's share
of its total is reported, and the two score vectors are compared. Prints a table, then the
JSON report on the last line. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'


def write_video(path: Path, frames: int = 300, height: int = 256, width: int = 340,
                seed: int = 0) -> Path:
    """A textured scene panning right, H.264 (yuv420p), 30 fps."""
    import av

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 8 + 2, (width + 2 * frames) // 8 + 2, 3))
    scene = np.kron(coarse, np.ones((8, 8, 1))).astype(np.uint8)
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=30)
        stream.height, stream.width, stream.pix_fmt = height, width, 'yuv420p'
        for i in range(frames):
            image = np.ascontiguousarray(scene[:height, 2 * i:2 * i + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def mmaction_config(clips: int, crops: int):
    import mmaction
    from mmengine.config import Config

    path = Path(mmaction.__file__).parent / '.mim/configs/recognition/tsm' / f'{R50}.py'
    cfg = Config.fromfile(str(path))
    for step in cfg.test_pipeline:
        if step['type'] == 'SampleFrames':
            step['num_clips'] = 8
        if step['type'] == 'TenCrop' and crops != 10:
            step.clear()
            step.update(type={1: 'CenterCrop', 3: 'ThreeCrop'}[crops],
                        crop_size=224 if crops == 1 else 256)
    if clips != 1:
        raise SystemExit('--views: the R50 K400 protocol has one temporal clip (CLIPSxCROPS 1xN '
                         'or 8xN where 8 are its segments)')
    return cfg


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--crops', type=int, default=10, choices=(1, 3, 10))
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=None,
                        help="views per forward pass (default: tsmnet predict's)")
    parser.add_argument('--json', dest='json_path', help='also write the report here')
    parser.add_argument('--videos', type=int, default=None,
                        help='instead: N short videos through tsmnet.video.predict_videos, '
                             'total time / the model alone')
    parser.add_argument('--workers', type=int, default=2, help='decoding processes (--videos)')
    parser.add_argument('--runtime', default='eager',
                        help="tsmnet predict's --runtime (eager, compile, onnxruntime, openvino)")
    parser.add_argument('--precision', default=None, help="tsmnet predict's --precision")
    parser.add_argument('--calibration', type=int, default=0, metavar='N',
                        help="--precision int8: N other videos (other scenes) written to a "
                             "folder, tsmnet predict's --calibration")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.videos:
        return many_videos(args)

    from mmaction.apis import init_recognizer
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope

    from tsmnet.mmaction_compat import import_mmaction_models
    from tsmnet.predictor import DEFAULT_BATCH, build_predictor

    import_mmaction_models()  # the stand-in for the wheel's missing module
    tmp = Path(tempfile.mkdtemp(prefix='bench_predict_'))
    video = str(write_video(tmp / 'clip.mp4'))
    cfg = mmaction_config(1, args.crops)
    theirs = init_recognizer(cfg, None, device='cpu')
    gen = torch.Generator().manual_seed(0)
    state = theirs.state_dict()
    for key, value in state.items():  # random statistics and a wide head: scores spread out
        if key.endswith('running_var'):
            value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.75)
        elif key == 'cls_head.fc_cls.weight':
            value.copy_(torch.randn(value.shape, generator=gen) * 0.5)
    ckpt = tmp / 'random.pth'
    torch.save({'state_dict': state, 'meta': {}}, ckpt)
    theirs = init_recognizer(cfg, str(ckpt), device='cpu')
    init_default_scope('mmaction')
    pipeline = Compose(cfg.test_pipeline)

    views = f'1,{args.crops}'
    batch = DEFAULT_BATCH if args.batch is None else args.batch
    calibration = None
    if args.calibration:
        calibration = tmp / 'calibration'
        calibration.mkdir()
        for i in range(args.calibration):
            write_video(calibration / f'{i}.mp4', frames=60, seed=1 + i)
    ours = build_predictor(R50, str(ckpt), views=views, batch=batch, runtime=args.runtime,
                           precision=args.precision, calibration=calibration,
                           threads=args.threads)

    def run_mmaction() -> tuple[dict[str, float], torch.Tensor]:
        t0 = time.perf_counter()
        data = pipeline(dict(filename=video, label=-1, start_index=0, modality='RGB'))
        t1 = time.perf_counter()
        with torch.no_grad():
            result = theirs.test_step(pseudo_collate([data]))[0]
        t2 = time.perf_counter()
        return {'decode + transforms': t1 - t0, 'preprocess + model': t2 - t1}, \
            result.pred_score

    def run_tsmnet() -> tuple[dict[str, float], torch.Tensor]:
        # what tsmnet predict does per video: its Predictor on the file, timed by its stages
        prediction = ours(video, top=ours.model.num_classes)
        scores = torch.zeros(ours.model.num_classes)
        for index, _, prob in prediction.top:
            scores[index] = prob
        return prediction.seconds, scores

    runs = {'mmaction': run_mmaction, 'tsmnet': run_tsmnet}
    for fn in runs.values():  # warm-up (allocations, oneDNN primitives)
        fn()
    stages: dict[str, list[dict[str, float]]] = {k: [] for k in runs}
    scores: dict[str, torch.Tensor] = {}
    for r in range(args.repeats):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            times, scores[name] = runs[name]()
            stages[name].append(times)
    totals = {k: [sum(t.values()) for t in v] for k, v in stages.items()}
    ratios = [a / b for a, b in zip(totals['tsmnet'], totals['mmaction'])]
    report = {
        'benchmark': 'tsmnet predict / mmaction inference_recognizer',
        'video': '300 frames, 340x256, H.264, 30 fps', 'config': R50,
        'views': f'8 segments x {args.crops} crops', 'threads': args.threads, 'batch': batch,
        'runtime': ours.runtime, 'precision': ours.precision,
        'repeats': args.repeats, 'ratio': statistics.median(ratios),
        'ratios': ratios,
        'seconds': {k: statistics.median(v) for k, v in totals.items()},
        'stages': {k: {s: statistics.median(t[s] for t in v) for s in v[0]}
                   for k, v in stages.items()},
        'max_abs_score_diff': float((scores['tsmnet'] - scores['mmaction'].float()).abs().max()),
        'same_top1': int(scores['tsmnet'].argmax()) == int(scores['mmaction'].argmax()),
        'calibration_videos': args.calibration,
        'torch': torch.__version__, 'loadavg': os.getloadavg()[0],
    }
    for name, parts in report['stages'].items():
        total = report['seconds'][name]
        report['stages'][name] = {s: {'s': v, 'share': v / total} for s, v in parts.items()}
    lines = [f'{"":>8}  {"total s":>8}  stages (share of total)']
    for name in runs:
        parts = ', '.join(f'{s} {v["s"]:.2f} s ({v["share"]:.0%})'
                          for s, v in report['stages'][name].items())
        lines.append(f'{name:>8}  {report["seconds"][name]:8.2f}  {parts}')
    lines.append(f'tsmnet / mmaction: {report["ratio"]:.3f} (median of {args.repeats}); scores '
                 f'differ by at most {report["max_abs_score_diff"]:.1e}')
    print('\n'.join(lines))
    print(json.dumps(report))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1))
    return report


def many_videos(args: argparse.Namespace) -> dict:
    """``--videos N``: N short videos (2 s, 30 fps, 340x256 H.264) scored by the R50 K400
    recognizer (random weights), 8 segments x ``--crops`` crops. Per repeat, interleaved:
    ``model`` (the model alone on views decoded beforehand: the floor), ``workers``
    (:func:`tsmnet.video.predict_videos` with ``--workers`` decoding processes, what ``tsmnet
    predict`` runs) and ``inline`` (decoding in this process, between model calls). The figure
    is total time of ``workers`` / ``model`` (target <= 1.15)."""
    from tsmnet.models.factory import create_model
    from tsmnet.predictor import DEFAULT_BATCH, Predictor
    from tsmnet.video import load_video, predict_videos
    from tsmnet.weights.zoo import weights

    tmp = Path(tempfile.mkdtemp(prefix='bench_predict_many_'))
    paths = [str(write_video(tmp / f'v{i:03d}.mp4', frames=60)) for i in range(args.videos)]
    protocol = weights(R50).protocol.with_views(1, args.crops)
    batch = DEFAULT_BATCH if args.batch is None else args.batch
    model = create_model(R50)
    predictor = Predictor(model, protocol, [str(i) for i in range(model.num_classes)],
                          batch=batch)
    decoded = [load_video(p, protocol) for p in paths]

    def run_model() -> None:
        for views in decoded:
            predictor.scores(views)

    def run_batch(workers: int) -> None:
        results = list(predict_videos(paths, predictor.scores, protocol, predictor.labels,
                                      workers=workers))
        assert all(r.ok for r in results)

    runs = {'model': run_model, 'workers': lambda: run_batch(args.workers),
            'inline': lambda: run_batch(0)}
    for views in decoded[:2]:  # warm-up (allocations, oneDNN primitives)
        predictor.scores(views)
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.repeats):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            tic = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - tic)
    ratios = [w / m for w, m in zip(seconds['workers'], seconds['model'])]
    report = {
        'benchmark': 'tsmnet predict over many videos: total / model alone',
        'videos': f'{args.videos} x 60 frames, 340x256, H.264, 30 fps', 'config': R50,
        'views': f'8 segments x {args.crops} crops', 'threads': args.threads,
        'workers': args.workers, 'batch': batch, 'repeats': args.repeats,
        'ratio': statistics.median(ratios), 'ratios': ratios,
        'inline_ratio': statistics.median(i / m for i, m in zip(seconds['inline'],
                                                                seconds['model'])),
        'seconds': {k: statistics.median(v) for k, v in seconds.items()},
        'torch': torch.__version__, 'loadavg': os.getloadavg()[0],
    }
    print(f'{args.videos} videos: model alone {report["seconds"]["model"]:.1f} s, with '
          f'{args.workers} decoding workers {report["seconds"]["workers"]:.1f} s (ratio '
          f'{report["ratio"]:.3f}), decoding in-process {report["seconds"]["inline"]:.1f} s '
          f'(ratio {report["inline_ratio"]:.3f}); load average {report["loadavg"]:.1f}')
    print(json.dumps(report))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1))
    return report


if __name__ == '__main__':
    main(sys.argv[1:])
