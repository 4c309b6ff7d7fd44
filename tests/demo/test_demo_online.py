"""``tsmnet demo --online``: a causal TSM trained on the motion task, streamed frame by frame;
the streamed score after all frames is the offline score of the whole clip."""

from __future__ import annotations

import json

import pytest
import torch
from parity import randomize

from tsmnet.cli import main
from tsmnet.demo import DemoConfig, MotionDirection
from tsmnet.demo.online import build_causal_model, streamed_accuracy


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['resnet', 'mobilenetv2'])
def test_streamed_scores_end_at_the_offline_scores(arch: str) -> None:
    cfg = DemoConfig(num_segments=4, size=32)
    model = build_causal_model(cfg, num_classes=2, arch=arch).eval()
    randomize(model.backbone)  # BN statistics as after training, not identities
    clips, labels = MotionDirection(32, 4, seed=1).sample_pairs(3)
    by_frames, scores = streamed_accuracy(model, clips, labels)
    assert len(by_frames) == 4 and all(0 <= a <= 1 for a in by_frames)
    with torch.no_grad():
        offline = model(clips)
    torch.testing.assert_close(scores, offline, atol=1e-5, rtol=0)
    # a clip and its reverse hold the same frames: per-frame averaging would score them
    # alike, the causal shift does not
    assert not torch.equal(scores[:3], scores[3:])


@pytest.mark.slow
def test_demo_online_command(tmp_path, capsys) -> None:
    out = tmp_path / 'online'
    assert main(['demo', '--online', '--steps', '3', '--num-segments', '4', '--batch', '4',
                 '--val-pairs', '4', '--size', '32', '--out', str(out), '--no-progress']) == 0
    text = capsys.readouterr().out
    assert 'frames seen' in text and 'offline (all)' in text
    results = json.loads((out / 'online.json').read_text())
    by_frames = results['streamed_accuracy_by_frames_seen']
    assert len(by_frames) == 4
    assert by_frames[-1] == pytest.approx(results['offline_accuracy'])
    assert results['streamed_agrees_with_offline'] == 1.0
    assert (out / 'online.png').stat().st_size > 1000


def test_wrapped_clips_keep_the_whole_object_and_the_pairing() -> None:
    """On the torus the object is never cut by an edge (its area stays the same in every
    frame, wherever it is), and a clip of class 1 is still a clip of class 0 reversed."""
    clips, labels = MotionDirection(32, 8, seed=4, wrap=True).sample_pairs(6)
    assert torch.equal(clips[6:], clips[:6].flip(1)) and labels.tolist() == [0] * 6 + [1] * 6
    background = clips.median(dim=-1).values.median(dim=-1).values
    area = ((clips - background[..., None, None]).abs().sum(dim=2) > 0.6).float().sum((2, 3))
    assert (area.max(dim=1).values / area.min(dim=1).values < 1.4).all(), area  # pixel grid
