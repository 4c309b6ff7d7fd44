"""``tsmnet demo``: the synthetic task, the two recognisers, and a reduced end-to-end run."""

from __future__ import annotations

import json

import pytest
import torch

from tsmnet.cli import main
from tsmnet.demo import ClipClassifier, DemoConfig, MotionDirection
from tsmnet.demo.train import build_model, evaluate


def _frame_multiset(clip: torch.Tensor) -> list[bytes]:
    """The frames of a clip ``[T, C, H, W]`` as a sorted list, i.e. with their order lost."""
    return sorted(frame.numpy().tobytes() for frame in clip)


# --- the data ----------------------------------------------------------------------------

@pytest.mark.parametrize('seed', [0, 1, 7])
def test_paired_classes_hold_the_same_frames(seed: int) -> None:
    n = 6
    forwards, _ = MotionDirection(seed=seed).sample(n, labels=torch.zeros(n, dtype=torch.int64))
    backwards, _ = MotionDirection(seed=seed).sample(n, labels=torch.ones(n, dtype=torch.int64))
    for a, b in zip(forwards, backwards):
        assert _frame_multiset(a) == _frame_multiset(b)
        assert torch.equal(b, a.flip(0))
        # ... and the order carries information: the frames differ from one another.
        assert all(not torch.equal(a[t], a[t + 1]) for t in range(len(a) - 1))


def test_frames_do_not_depend_on_the_label() -> None:
    """With random labels, the clip is drawn first and only its playing direction follows the
    label: both classes' frames come from one distribution."""
    clips, labels = MotionDirection(seed=3).sample(16)
    rendered = MotionDirection(seed=3).render(16)
    assert 0 < labels.sum() < 16
    for clip, label, base in zip(clips, labels, rendered):
        assert torch.equal(clip, base.flip(0) if label else base)


def test_sample_pairs_are_a_clip_and_its_reverse() -> None:
    clips, labels = MotionDirection(size=40, num_frames=6, seed=2).sample_pairs(5)
    assert clips.shape == (10, 6, 3, 40, 40) and clips.dtype == torch.float32
    assert labels.tolist() == [0] * 5 + [1] * 5
    assert torch.equal(clips[5:], clips[:5].flip(1))


def test_label_is_the_direction_of_motion() -> None:
    """Class 0 moves right, class 1 left: the x centroid of the object rises or falls."""
    clips, labels = MotionDirection(seed=5).sample(32)
    # The object is the set of pixels far from the clip's median colour (the background).
    background = clips.median(dim=-1).values.median(dim=-1).values  # [N, T, 3]
    mask = ((clips - background[..., None, None]).abs().sum(dim=2) > 0.6).float()  # [N, T, H, W]
    xs = torch.arange(clips.shape[-1], dtype=torch.float32)
    cx = (mask.sum(dim=2) * xs).sum(dim=-1) / mask.sum(dim=(2, 3)).clamp(min=1)  # [N, T]
    motion = cx[:, -1] - cx[:, 0]
    assert (motion[labels == 0] > 2).all()
    assert (motion[labels == 1] < -2).all()


def test_seeded_and_reproducible() -> None:
    a_clips, a_labels = MotionDirection(seed=11).sample(8)
    b_clips, b_labels = MotionDirection(seed=11).sample(8)
    c_clips, _ = MotionDirection(seed=12).sample(8)
    assert torch.equal(a_clips, b_clips) and torch.equal(a_labels, b_labels)
    assert not torch.equal(a_clips, c_clips)
    assert 0 <= a_clips.min() and a_clips.max() <= 1


@pytest.mark.parametrize('kwargs', [dict(size=8), dict(num_frames=1), dict(size=32.0)])
def test_bad_data_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MotionDirection(**kwargs)


def test_bad_labels() -> None:
    with pytest.raises(ValueError, match='labels'):
        MotionDirection().sample(2, labels=torch.tensor([0, 2]))


def test_bad_config() -> None:
    with pytest.raises(ValueError, match='steps'):
        DemoConfig(steps=0)
    with pytest.raises(ValueError, match='num_segments'):
        DemoConfig(num_segments=1)


# --- the two recognisers -------------------------------------------------------------------

@pytest.mark.slow
def test_no_shift_model_is_blind_to_order_and_the_shift_model_is_not() -> None:
    """Without shifts the clip score is the same for a clip and its reverse, so on pairs the
    accuracy is exactly chance whatever the weights; with shifts the scores differ."""
    cfg = DemoConfig(num_segments=8, size=32)
    clips, labels = MotionDirection(size=32, seed=4).sample_pairs(4)
    tsn = build_model(cfg, is_shift=False, num_classes=2).eval()
    tsm = build_model(cfg, is_shift=True, num_classes=2).eval()
    assert isinstance(tsn, ClipClassifier)
    with torch.no_grad():
        tsn_scores, tsm_scores = tsn(clips), tsm(clips)
    torch.testing.assert_close(tsn_scores[:4], tsn_scores[4:], rtol=1e-5, atol=1e-5)
    assert (tsm_scores[:4] - tsm_scores[4:]).abs().max() > 1e-3
    assert evaluate(tsn, clips, labels)[0] == 0.5
    # Same initial weights: only the shift differs.
    tsm_state, tsn_state = tsm.state_dict(), tsn.state_dict()
    assert len(tsm_state) == len(tsn_state)
    for (_, a), (_, b) in zip(tsm_state.items(), tsn_state.items()):
        assert torch.equal(a, b)


# --- a reduced run of the command ------------------------------------------------------------

@pytest.mark.slow
def test_demo_command_tsm_learns_order_tsn_stays_at_chance(tmp_path, capsys) -> None:
    out = tmp_path / 'demo'
    steps = 30  # seeds 0-5 reach 0.97-1.00 validation accuracy with these settings
    code = main(['demo', '--steps', str(steps), '--batch', '8', '--val-pairs', '32',
                 '--seed', '0', '--out', str(out), '--no-progress'])
    assert code == 0

    results = json.loads((out / 'results.json').read_text())
    tsm, tsn = results['models']['tsm'], results['models']['tsn']
    assert results['task']['chance'] == 0.5 and results['task']['val_clips'] == 64
    assert tsm['is_shift'] is True and tsn['is_shift'] is False
    # The no-shift model is exactly at chance on pairs; the shift model is far above it.
    assert abs(tsn['val_accuracy'] - 0.5) <= 0.02
    assert tsm['val_accuracy'] >= 0.85
    assert tsm['val_accuracy'] - tsn['val_accuracy'] >= 0.3
    assert tsm['params'] == tsn['params'] > 10_000_000  # ResNet-18 and a linear head
    for name in ('tsm', 'tsn'):
        assert results['models'][name]['train_time_s'] > 0
        history = results['history'][name]
        assert len(history['loss']) == len(history['acc']) == steps
        assert len(history['val_acc']) == len(results['history']['eval_step'])
        assert history['val_acc'][-1] == results['models'][name]['val_accuracy']
    assert results['config']['steps'] == steps and results['config']['depth'] == 18

    import matplotlib.pyplot as plt

    image = plt.imread(out / 'demo.png')
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    assert image.std() > 0.05  # not a blank canvas

    printed = capsys.readouterr().out
    assert 'TSM (is_shift=True)' in printed and 'TSN (is_shift=False)' in printed
    assert f'{tsm["val_accuracy"]:.3f}' in printed
