"""Training data and ``tsmnet finetune``'s memory: ``python benchmarks/bench_data.py
[--videos 16] [--workers 2] [--repeats 3] [--rss-only | --loader-only | --epoch-only]
[--long-minutes 10] [--epoch-videos 64]``.

(a) Train loader clips/s, side by side in one run, same videos (written here: 340x256 H.264,
    5 s at 30 fps, like resized Kinetics clips), same workers, batch 8, T=8: tsmnet's
    ``VideoDataset`` (PyAV, only the sampled frames, MMAction2's TSM train pipeline, uint8
    clips) + ``DataLoader`` + its ``ClipNormalizer`` (as ``tsmnet finetune``), against
    MMAction2 1.2.0's own ``VideoDataset`` with the TSM config's ``train_pipeline`` (decord)
    + ``DataLoader`` (``pseudo_collate``) + its ``ActionDataPreprocessor`` (the normalisation
    that makes the model input). Persistent workers; each repeat is one pass over the videos;
    the figure is the median per-repeat ratio of clips/s (tsmnet / MMAction2).
(b) ``tsmnet finetune`` peak RSS (``ru_maxrss`` of the process, ``--workers 0`` so that all
    decoding happens in it) for 20 and for 200 short videos, and for one long video
    (``--long-minutes``, 640x272 at 25 fps): ratios to the 20-video run.
(c) One epoch of ``tsmnet finetune`` against MMAction2's ``tools/train.py`` (through ``tsmnet
    train``, a config inheriting MMAction2's MobileNetV2-TSM config), each a fresh process, on
    the same videos (``--epoch-videos``, 340x256, 5 s, two classes), the same model
    (MobileNetV2-TSM from scratch at 112, T=8, 2 classes), batch 8, SGD, the same workers and
    ``OMP_NUM_THREADS``; no validation. Wall time of the whole command (start-up included),
    interleaved repeats; the figure is the median per-repeat ratio (tsmnet / MMAction2).

Prints the JSON report on the last line. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tsmnet.benchmark.harness import Timer, interleaved, loadavg, machine, medians, ratio, spread

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
MNV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'
CONFIGS = Path(__file__).resolve().parent.parent / 'configs' / 'tsm'
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
def train_pipeline(size: int = 224) -> list[dict]:
    """MMAction2's TSM train pipeline (decord) at ``size`` (the short side at size * 8 / 7)."""
    return [
        dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=8),
        dict(type='DecordDecode'), dict(type='Resize', scale=(-1, round(size * 8 / 7))),
        dict(type='MultiScaleCrop', input_size=size, scales=(1, 0.875, 0.75, 0.66),
             random_crop=False, max_wh_scale_gap=1, num_fixed_crops=13),
        dict(type='Resize', scale=(size, size), keep_ratio=False),
        dict(type='Flip', flip_ratio=0.5), dict(type='FormatShape', input_format='NCHW'),
        dict(type='PackActionInputs')]


def write_video(path: Path, frames: int, height: int, width: int, rate: int = 30,
                seed: int = 0) -> Path:
    """A textured scene panning right, H.264 (yuv420p, ultrafast)."""
    import av

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 8 + 2, (width + 2 * frames) // 8 + 2, 3))
    scene = np.kron(coarse, np.ones((8, 8, 1))).astype(np.uint8)
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=rate)
        stream.height, stream.width, stream.pix_fmt = height, width, 'yuv420p'
        stream.options = {'preset': 'ultrafast'}
        for i in range(frames):
            x = (2 * i) % (scene.shape[1] - width)
            image = np.ascontiguousarray(scene[:height, x:x + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_classes(root: Path, count: int, frames: int, height: int, width: int) -> Path:
    """``root/a/*.mp4``, ``root/b/*.mp4``: ``count`` videos in two classes."""
    for i in range(count):
        folder = root / 'ab'[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        write_video(folder / f'{i:04d}.mp4', frames, height, width, seed=i)
    return root


def loader_figures(root: Path, workers: int, repeats: int, batch: int = 8) -> dict:
    from mmaction.datasets import VideoDataset as TheirDataset
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from torch.utils.data import DataLoader

    from tsmnet.data import ClipNormalizer, TrainPipeline, VideoDataset
    from tsmnet.mmaction_compat import import_mmaction_models

    init_default_scope('mmaction')
    preprocessor = import_mmaction_models().data_preprocessors.ActionDataPreprocessor(
        mean=MEAN, std=STD, format_shape='NCHW')
    ours = VideoDataset.from_folder(root, pipeline=TrainPipeline(8, normalize=False), seed=0)
    normalize = ClipNormalizer(MEAN, STD)
    ann = root / 'ann.txt'
    ann.write_text(''.join(f'{p.relative_to(root)} {k}\n'
                           for p, k in zip(ours.videos.paths, ours.labels)))
    theirs = TheirDataset(str(ann), train_pipeline(), data_prefix=dict(video=str(root)))
    loaders = {
        'tsmnet': DataLoader(ours, batch_size=batch, shuffle=True, num_workers=workers,
                             persistent_workers=True),
        'mmaction2': DataLoader(theirs, batch_size=batch, shuffle=True, num_workers=workers,
                                persistent_workers=True, collate_fn=pseudo_collate)}
    shapes = {}

    def epoch(name):
        def run():
            for data in loaders[name]:
                if name == 'mmaction2':
                    data = preprocessor(data, True)['inputs']
                else:
                    data = normalize(data[0])
                shapes[name] = list(data.shape)
        return run
    times = interleaved(Timer(), {k: epoch(k) for k in loaders}, repeats, inner=1)
    clips = len(ours)
    return {'videos': clips, 'workers': workers, 'batch': batch, 'shapes': shapes,
            'clips_per_s': {k: clips / v for k, v in medians(times).items()},
            'speedup': 1 / ratio(times, 'tsmnet', 'mmaction2'),
            'speedup_quartiles': sorted(1 / r for r in spread(times, 'tsmnet', 'mmaction2'))}


def finetune_rss(data_dir: Path, out: Path) -> dict:
    """Peak RSS (MiB) and seconds of one ``tsmnet finetune`` epoch in a fresh process."""
    command = [sys.executable, '-m', 'tsmnet', 'finetune', str(data_dir), '--model', R50,
               '--weights', 'none', '--depth', '18', '--size', '64', '--epochs', '1',
               '--batch', '4', '--workers', '0', '--threads', '2', '--val-split', '0',
               '--quiet', '--out', str(out)]
    code = ('import resource, subprocess, sys, time; t = time.perf_counter(); '
            'rc = subprocess.call(sys.argv[1:]); '
            'print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, '
            'time.perf_counter() - t)')
    line = subprocess.run([sys.executable, '-c', code, *command], check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    rc, kib, seconds = line.split()
    if rc != '0':
        raise SystemExit(f'tsmnet finetune failed on {data_dir}')
    return {'peak_rss_mib': round(int(kib) / 1024, 1), 'seconds': round(float(seconds), 1)}


def rss_figures(tmp: Path, long_minutes: float) -> dict:
    small = {n: write_classes(tmp / f'small{n}', n, 40, 96, 128) for n in (20, 200)}
    long_root = tmp / 'long'
    for name in 'ab':  # finetune needs two classes: one long video, one short
        (long_root / name).mkdir(parents=True)
    frames = int(long_minutes * 60 * 25)
    write_video(long_root / 'a' / 'long.mp4', frames, 272, 640, rate=25)
    write_video(long_root / 'b' / 'short.mp4', 40, 272, 640, rate=25)
    runs = {f'{n}_videos': finetune_rss(root, tmp / f'out{n}') for n, root in small.items()}
    runs[f'one_{long_minutes:g}_minute_video'] = finetune_rss(long_root, tmp / 'outlong')
    base = runs['20_videos']['peak_rss_mib']
    return {'runs': runs, 'rss_ratio_to_20_videos': {k: round(v['peak_rss_mib'] / base, 3)
                                                     for k, v in runs.items()}}


# (c)'s MMAction2 side: tsmnet's MobileNetV2-TSM config (MMAction2's, with the drop-in),
# from scratch, on the benchmark's videos, with the same pipeline at 112 as tsmnet finetune's
# --size 112 (short side 128, MultiScaleCrop 112, Resize 112, Flip 0.5)
EPOCH_CONFIG = """
_base_ = {base!r}
model = dict(backbone=dict(pretrained=None), cls_head=dict(num_classes=2))
train_pipeline = {pipeline!r}
train_dataloader = dict(batch_size={batch}, num_workers={workers}, persistent_workers=True,
                        dataset=dict(ann_file={ann!r}, data_prefix=dict(video={root!r}),
                                     pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_begin=1, val_interval=1)
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=0.01, momentum=0.9, weight_decay=1e-4))
default_hooks = dict(checkpoint=dict(interval=1, save_best=None))
"""


def epoch_figures(root: Path, tmp: Path, workers: int, repeats: int, batch: int = 8) -> dict:
    ann = root / 'ann.txt'
    paths = sorted(root.glob('*/*.mp4'))
    ann.write_text(''.join(f'{p.relative_to(root)} {"ab".index(p.parent.name)}\n'
                           for p in paths))
    config = tmp / 'epoch_config.py'
    config.write_text(EPOCH_CONFIG.format(
        base=str(CONFIGS / 'tsm_tsmnet-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb.py'),
        batch=batch, workers=workers, ann=str(ann), root=str(root),
        pipeline=train_pipeline(112)))
    env = {**os.environ, 'OMP_NUM_THREADS': '2'}
    commands = {
        'tsmnet': [sys.executable, '-m', 'tsmnet', 'finetune', str(root), '--model', MNV2,
                   '--weights', 'none', '--size', '112', '--epochs', '1', '--batch', str(batch),
                   '--workers', str(workers), '--threads', '2', '--val-split', '0', '--flip',
                   '--optimizer', 'sgd', '--lr', '0.01', '--quiet', '--out', str(tmp / 'ft')],
        'mmaction2': [sys.executable, '-m', 'tsmnet', 'train', str(config), '--work-dir',
                      str(tmp / 'work')]}

    def command(name):
        def run():
            subprocess.run(commands[name], check=True, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return run
    times = interleaved(Timer(), {k: command(k) for k in commands}, repeats, inner=1)
    return {'videos': len(paths), 'workers': workers, 'batch': batch,
            'seconds': medians(times), 'ratio': ratio(times, 'tsmnet', 'mmaction2'),
            'ratio_quartiles': sorted(spread(times, 'tsmnet', 'mmaction2'))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--videos', type=int, default=16)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--long-minutes', type=float, default=10.0)
    parser.add_argument('--loader-only', action='store_true')
    parser.add_argument('--rss-only', action='store_true')
    parser.add_argument('--epoch-only', action='store_true')
    parser.add_argument('--epoch-videos', type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report: dict = {'machine': machine(), 'cores': os.cpu_count(), 'torch': torch.__version__,
                    'loadavg_start': loadavg()}
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        only = args.loader_only or args.rss_only or args.epoch_only
        if args.loader_only or not only:
            root = write_classes(tmp / 'loader', args.videos, 150, 256, 340)
            report['loader'] = loader_figures(root, args.workers, args.repeats)
        if args.rss_only or not only:
            report['finetune_rss'] = rss_figures(tmp, args.long_minutes)
        if args.epoch_only or not only:
            root = write_classes(tmp / 'epoch', args.epoch_videos, 150, 256, 340)
            report['epoch'] = epoch_figures(root, tmp, args.workers, args.repeats)
    report.update(loadavg_end=loadavg(), seconds=round(time.perf_counter() - tic, 1),
                  self_peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    print(json.dumps(report))
    return report


if __name__ == '__main__':
    main()
