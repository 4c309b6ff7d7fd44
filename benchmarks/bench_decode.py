"""Sampled decoding: tsmnet's reader against decord 0.6.0 (MMAction2's) and against the old
decode-from-start reader: ``python benchmarks/bench_decode.py [--cache DIR] [--repeats 5]
[--threads 2] [--sizes 640x360 1920x1080] [--minutes 10]``.

The benchmark writes its own videos (cached in ``--cache``, default
``/tmp/tsmnet_bench_decode``): ``--minutes``-long H.264 (libx264, preset fast, GOP 250,
B-frames, 25 fps, yuv420p) of a textured scene panning under a moving square, at each
``--sizes``, and short clips (``--short-seconds``) at 640x360. For each long video it reads
the 8 test-mode samples (``tsmnet.video.sample_frames(n, 8)``, what ``tsmnet predict`` reads)
with ``tsmnet.video.read_frames`` and with ``decord.VideoReader(path).get_batch(indices)``
(a fresh reader each call, as MMAction2's ``DecordInit`` + ``DecordDecode`` do), checks the
frames are equal, and times both, repeats interleaved (harness); on the short clips it times
the new reader against the old one (decode from the start, kept here only). Decoding threads:
``--threads`` for both PyAV (``VideoReader(threads=...)``: the codec's ``thread_count`` with
``thread_type='AUTO'``, frame and slice threading) and decord (``VideoReader(num_threads=...)``);
tsmnet with one thread is timed too (``tsmnet_1_thread``: what frame threading is worth).
Prints a table, then the JSON report on the last line. Never collected by pytest.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from tsmnet.benchmark import harness
from tsmnet.video import VideoReader, probe, sample_frames

RATE = 25
GOP = 250


def scene_frames(height: int, width: int, num_frames: int, seed: int = 0):
    """``num_frames`` ``[H, W, 3]`` uint8 RGB frames: a smooth texture panning right and
    slowly down (wrapping around), and a bright square moving on its own path."""
    rng = np.random.default_rng(seed)
    period_w, period_h = width + 1024, height + 512
    coarse = rng.uniform(0, 255, (period_h // 16 + 2, period_w // 16 + 2, 3))
    scene = np.kron(coarse, np.ones((16, 16, 1)))[:period_h, :period_w].astype(np.uint8)
    scene = np.concatenate([scene, scene[:, :width]], axis=1)
    scene = np.concatenate([scene, scene[:height]], axis=0)  # a wrapped window is a slice
    side = max(8, height // 8)
    for i in range(num_frames):
        x, y = (3 * i) % (period_w - width), (i // 4) % (period_h - height)
        frame = np.array(scene[y:y + height, x:x + width])
        t = i / RATE
        sx = int((0.5 + 0.4 * np.sin(t / 3)) * (width - side))
        sy = int((0.5 + 0.4 * np.cos(t / 5)) * (height - side))
        frame[sy:sy + side, sx:sx + side] = (255, 240, 32)
        yield frame


def write_long_video(path: Path, height: int, width: int, num_frames: int) -> Path:
    """Encode :func:`scene_frames` to ``path`` (H.264, preset fast, GOP 250), atomically:
    written to a temporary name first, so an interrupted run leaves no half video cached."""
    import av

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f'.{path.stem}.partial{path.suffix}')
    with av.open(str(partial), mode='w') as container:
        stream = container.add_stream('libx264', rate=RATE)
        stream.height, stream.width, stream.pix_fmt = height, width, 'yuv420p'
        stream.options = {'preset': 'fast', 'g': str(GOP), 'keyint_min': '25'}
        for image in scene_frames(height, width, num_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return path


def video_path(cache: Path, height: int, width: int, seconds: float) -> Path:
    return cache / f'scene_{width}x{height}_{seconds:g}s_h264_g{GOP}.mp4'


def parse_size(text: str) -> tuple[int, int]:
    """``'WxH'`` -> ``(height, width)``."""
    w, h = text.lower().split('x')
    return int(h), int(w)


def old_read_sampled(path: str, num_clips: int = 8, threads: int = 0) -> np.ndarray:
    """The reader before seeking (tsmnet 0.x): count the packets, then decode every frame from
    the first to the last sample, keeping the sampled ones. Kept here only, for comparison."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        count = sum(1 for packet in container.demux(stream) if packet.size > 0)
    indices = sample_frames(count, num_clips)
    needed, last = set(indices.tolist()), int(indices.max())
    frames: dict[int, np.ndarray] = {}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        stream.codec_context.thread_count = threads
        for index, frame in enumerate(container.decode(stream)):
            if index in needed:
                frames[index] = frame.to_ndarray(format='rgb24')
            if index >= last:
                break
    return np.stack([frames[i] for i in indices.tolist()])


def new_read_sampled(path: str, num_clips: int = 8, threads: int = 0) -> np.ndarray:
    """tsmnet's reader as ``tsmnet predict`` uses it: open and index once, read the samples."""
    with VideoReader(path, threads=threads) as video:
        return video.read(sample_frames(len(video), num_clips))


def decord_read_sampled(path: str, num_clips: int = 8, threads: int = 0) -> np.ndarray:
    """MMAction2's ``DecordInit`` + ``SampleFrames(test_mode=True)`` + ``DecordDecode``."""
    import decord

    reader = decord.VideoReader(path, num_threads=threads)
    return reader.get_batch(sample_frames(len(reader), num_clips)).asnumpy()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cache', type=Path,
                        default=Path(tempfile.gettempdir()) / 'tsmnet_bench_decode')
    parser.add_argument('--sizes', nargs='+', default=['640x360', '1920x1080'])
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--short-seconds', type=float, default=4.0)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--short-repeats', type=int, default=15)
    parser.add_argument('--threads', type=int, default=2,
                        help='decoding threads of both readers (PyAV frame threading, decord)')
    parser.add_argument('--write-only', action='store_true',
                        help='write the cached videos and stop')
    parser.add_argument('--json', dest='json_path', help='also write the report here')
    args = parser.parse_args(argv)
    long_videos = {}
    for size in args.sizes:
        height, width = parse_size(size)
        seconds = args.minutes * 60
        long_videos[size] = str(write_long_video(video_path(args.cache, height, width, seconds),
                                                 height, width, int(round(seconds * RATE))))
    short = str(write_long_video(video_path(args.cache, 360, 640, args.short_seconds), 360, 640,
                                 int(round(args.short_seconds * RATE))))
    if args.write_only:
        return {}
    timer, threads = harness.Timer(), args.threads
    report: dict = {'benchmark': 'sampled decoding: tsmnet / decord 0.6.0, tsmnet / old reader',
                    'samples': '8 test-mode (sample_frames(n, 8))', 'threads': threads,
                    'repeats': args.repeats, 'machine': harness.machine(),
                    'loadavg_before': harness.loadavg(), 'videos': {}}
    lines = [f'{"video":>24}  {"candidate":>16}  {"median s":>9}']
    cases = {f'{size} {args.minutes:g} min': (path, args.repeats, {
        'tsmnet': lambda p=path: new_read_sampled(p, threads=threads),
        'tsmnet_1_thread': lambda p=path: new_read_sampled(p, threads=1),
        'decord': lambda p=path: decord_read_sampled(p, threads=threads)})
        for size, path in long_videos.items()}
    cases[f'640x360 {args.short_seconds:g} s'] = (short, args.short_repeats, {
        'tsmnet': lambda: new_read_sampled(short, threads=threads),
        'old': lambda: old_read_sampled(short, threads=threads),
        'decord': lambda: decord_read_sampled(short, threads=threads)})
    for name, (path, repeats, candidates) in cases.items():
        outputs = {k: fn() for k, fn in candidates.items()}  # a warm-up call, and the check
        for k, frames in outputs.items():
            if not np.array_equal(frames, outputs['tsmnet']):
                raise SystemExit(f'{name}: {k} gives other frames than tsmnet')
        times = harness.interleaved(timer, candidates, repeats, inner=1)
        entry = {'seconds': harness.medians(times), 'frames': probe(path).num_frames}
        for other in candidates:
            if other != 'tsmnet':
                entry[f'tsmnet/{other}'] = harness.ratio(times, 'tsmnet', other)
                entry[f'tsmnet/{other} quartiles'] = harness.spread(times, 'tsmnet', other)
        report['videos'][name] = entry
        for k, v in entry['seconds'].items():
            lines.append(f'{name:>24}  {k:>16}  {v:9.3f}')
        lines += [f'{name:>24}  {k:>16}  {v:9.3f}' for k, v in entry.items()
                  if k.startswith('tsmnet/') and 'quartiles' not in k]
    report['loadavg_after'] = harness.loadavg()
    print('\n'.join(lines))
    print(harness.to_json(report, args.json_path))
    return report


if __name__ == '__main__':
    main(sys.argv[1:])
