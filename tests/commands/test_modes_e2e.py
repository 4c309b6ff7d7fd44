"""One model through every mode, from the command line, on videos the test writes (issue 29,
item 3): ``tsmnet finetune`` a small causal model -> ``tsmnet predict --weights`` -> ``tsmnet
export --weights`` (clip and step, fp32 and int8) -> ``tsmnet stream --weights`` and ``stream
--onnx``.

Every video has exactly T = 8 frames, so the clip the test protocol samples (one view: T
segments of one frame, center crop) is the video's frames 0..7, the same frames a stream has
seen after its T-th frame: every mode scores the same clip.

- the same top-1 in every mode;
- predict's single-view scores equal the ONNX clip model's within 1e-4;
- the stream's scores after the T-th frame (``--smooth T``) equal the offline causal model's
  on the same frames within 1e-5, eager and from the exported fp32 step;
- int8 (clip and step) within its documented bound (``tsmnet.deploy.report.BOUNDS``: cosine
  similarity of the class scores with eager).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import tsmnet
from tsmnet.cli import main
from tsmnet.deploy.report import BOUNDS
from tsmnet.deploy.runtime import clip_runner, step_runner
from tsmnet.video import FrameTransform, VideoTransform, read_sampled

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

R50 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
T = 8  # the zoo entry's segments: a video of T frames is sampled whole
SIZE = 32


def _run(capsys, argv: list[str]) -> str:
    """``tsmnet ARGV`` in this process; its standard output (it must succeed)."""
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err[-2000:]
    return out


def _probs(top: list[dict], labels: list[str]) -> np.ndarray:
    by_label = {row['label']: row['prob'] for row in top}
    assert set(by_label) == set(labels), by_label
    return np.array([by_label[label] for label in labels])


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


@pytest.fixture(scope='module')
def finetuned(tmp_path_factory) -> tuple[Path, Path]:
    """The motion task's class folders (the demo's clips: a square moving left or right) and
    the folder ``tsmnet finetune --shift-mode causal`` wrote."""
    from test_finetune_command import write_motion_videos

    root = tmp_path_factory.mktemp('modes')
    data = write_motion_videos(root / 'data', pairs=12)
    out = root / 'ft'
    assert main(['finetune', str(data), '--model', R50, '--weights', 'none', '--depth', '18',
                 '--shift-mode', 'causal', '--size', str(SIZE), '--epochs', '6', '--batch', '8',
                 '--dropout', '0', '--val-split', '0.25', '--out', str(out), '--quiet',
                 '--threads', '2', '--workers', '0', '--seed', '0']) == 0
    return data, out


@pytest.mark.slow  # trains, exports four files, streams
def test_every_mode_gives_the_same_answer(finetuned, tmp_path, capsys):
    data, ft = finetuned
    weights = str(ft / 'checkpoint.pth')
    model = tsmnet.load(weights)  # what every mode must reproduce: the offline causal model
    assert model.backbone.shift_mode == 'causal' and model.num_segments == T
    labels = model.class_names
    assert labels == ['moves left', 'moves right']
    protocol = model.protocol.with_views(1, 1)
    assert protocol.crop_size == SIZE

    # predict: every video, single view; the clip of the most confident one is compared
    pred = json.loads(_run(capsys, ['predict', str(data), '--weights', weights, '--views',
                                    '1,1', '--top', '2', '--json', '-', '--quiet']))
    assert pred['protocol']['crop_size'] == SIZE and not pred['failed']
    best = max(pred['videos'], key=lambda v: max(t['prob'] for t in v['top']))
    video = best['video']
    predicted = _probs(best['top'], labels)
    top1 = labels[int(predicted.argmax())]
    assert predicted.max() > 0.75, pred['videos']  # a clear decision to compare across modes

    # the clip every mode sees: the video's T frames, one center view
    sampled = read_sampled(video, protocol)
    clip = VideoTransform(protocol).from_sampled(sampled)  # [1, T, 3, SIZE, SIZE]
    assert clip.shape == (1, T, 3, SIZE, SIZE)
    frames = torch.stack([FrameTransform(protocol)(f) for f in sampled])
    torch.testing.assert_close(frames, clip[0], rtol=0, atol=0)  # a stream's inputs, to the bit
    with torch.no_grad():
        logits = model(clip)  # [1, 2]
    offline = logits.softmax(-1)[0].numpy()
    np.testing.assert_allclose(predicted, offline, rtol=0, atol=1e-5)

    # export: clip and step, fp32 and int8 (calibrated on the class folders)
    files = {}
    for kind in ('clip', 'step'):
        for fmt in ('onnx', 'onnx-int8'):
            path = tmp_path / f'{kind}-{fmt}.onnx'
            extra = ['--calibration', str(data)] if fmt.endswith('int8') else []
            _run(capsys, ['export', str(path), '--weights', weights, '--kind', kind, '--format',
                          fmt, *extra, '--json', str(tmp_path / f'{kind}-{fmt}.json')])
            report = json.loads((tmp_path / f'{kind}-{fmt}.json').read_text())
            assert report['ok'] and report['size'] == SIZE, report
            files[kind, fmt] = path

    # the clip model on ONNX Runtime: predict's scores within 1e-4; int8 within its bound
    fp32 = clip_runner(files['clip', 'onnx'])(clip)
    np.testing.assert_allclose(fp32.softmax(-1)[0].numpy(), predicted, rtol=0, atol=1e-4)
    int8 = clip_runner(files['clip', 'onnx-int8'])(clip)
    assert _cosine(int8, logits) >= BOUNDS['onnx-int8'][1]
    assert labels[int(int8.argmax())] == top1

    # the int8 step over the frames: each frame's scores within the bound, the T-frame
    # consensus the same top-1
    runner = step_runner(files['step', 'onnx-int8'])
    step_logits = torch.cat([runner(f[None]) for f in frames])  # [T, 2]
    eager_step = step_runner(model)
    eager_logits = torch.cat([eager_step(f[None]) for f in frames])
    assert _cosine(step_logits, eager_logits) >= BOUNDS['onnx-int8'][1]
    torch.testing.assert_close(eager_logits.mean(0), logits[0], rtol=0, atol=1e-5)

    # stream: eager from the checkpoint, and the exported steps; after the T-th frame the
    # consensus of the last T frames is the offline model's on those frames
    streams = {'eager': ['--weights', weights],
               'onnx': ['--onnx', str(files['step', 'onnx']), '--weights', weights],
               'onnx-int8': ['--onnx', str(files['step', 'onnx-int8']), '--weights', weights]}
    for name, how in streams.items():
        out = json.loads(_run(capsys, ['stream', video, *how, '--smooth', str(T), '--top', '2',
                                       '--quiet', '--json', '-']))
        assert len(out['frames']) == T and out['size'] == SIZE, name
        last = out['frames'][T - 1]
        assert last['window'] == T and last['label'] == top1, (name, last)
        if name != 'onnx-int8':
            np.testing.assert_allclose(_probs(last['top'], labels), offline, rtol=0, atol=1e-5,
                                       err_msg=name)
