"""The timing harness (tsmnet.benchmark.harness) measures what it is fed: two workloads of a
known ratio come out ranked and at that ratio, repeats interleave in a rotating order, and the
quartiles, saved bytes and JSON are those of known inputs."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from tsmnet.benchmark import (
    Timer,
    frame_times,
    interleaved,
    medians,
    pinned_threads,
    ratio,
    saved_bytes,
    spread,
    to_json,
)


def _python_work(n: int) -> int:
    return sum(range(n))  # CPU work in proportion to n, slowed alike by a shared machine


@pytest.mark.parametrize('workloads, bounds', [
    # sleeping does no work, so a busy machine barely moves it: a tight bound
    ((lambda: time.sleep(0.002), lambda: time.sleep(0.006)), (2.5, 3.3)),
    # real work is slowed by other jobs; interleaving makes both slow alike
    ((lambda: _python_work(20_000), lambda: _python_work(60_000)), (2.0, 4.5)),
], ids=['sleep', 'work'])
def test_a_known_ratio_is_ranked_and_measured(workloads, bounds) -> None:
    one, three = workloads
    times = interleaved(Timer(), {'one': one, 'three': three}, repeats=11, least_s=0.03)
    assert len(times['one']) == len(times['three']) == 11
    low, high = bounds
    assert low <= ratio(times, 'three', 'one') <= high, times
    assert 1 / high <= ratio(times, 'one', 'three') <= 1 / low
    fast, slow = medians(times)['one'], medians(times)['three']
    assert fast < slow
    q1, q3 = spread(times, 'three', 'one')
    assert low / 2 <= q1 and q3 <= 2 * high  # noise moves the ratio, not by a factor of 2


def test_repeats_interleave_in_a_rotating_order() -> None:
    calls: list[str] = []
    candidates = {name: (lambda name=name: calls.append(name)) for name in 'abc'}
    interleaved(Timer(), candidates, repeats=4, inner=1)
    assert ''.join(calls) == 'abc' 'bca' 'cab' 'abc'  # inner=1: no calibration, no warm-up


def test_calibration_repeats_a_short_candidate_to_the_least_time() -> None:
    calls = []
    counts = Timer().calibrate(lambda: calls.append(time.sleep(0.001)), least_s=0.01)
    assert 3 <= counts <= 11  # ~0.01 s / (1 ms + the sleep's overshoot)
    assert len(calls) >= 3 + 1  # a warm-up of at least 3 calls, then one timed


def test_frame_times_are_per_frame_after_one_warm_up() -> None:
    calls = {'clip': 0, 'steps': 0}

    def clip() -> None:
        calls['clip'] += 1
        time.sleep(0.004)

    def steps() -> None:
        calls['steps'] += 1
        for _ in range(4):
            time.sleep(0.002)

    times = frame_times(Timer(), {'clip': clip, 'steps': steps}, frames=4, repeats=5)
    assert calls == {'clip': 6, 'steps': 6}
    assert 0.001 <= medians(times)['clip'] < 0.002  # 4 ms / 4 frames
    assert 1.6 <= ratio(times, 'steps', 'clip') <= 2.4


def test_quartiles_of_known_ratios() -> None:
    times = {'a': [1.0, 2.0, 3.0, 4.0, 5.0], 'b': [1.0] * 5}
    assert ratio(times, 'a', 'b') == 3.0
    assert spread(times, 'a', 'b') == [2.0, 4.0]
    assert spread({'a': [1.0, 3.0], 'b': [1.0, 1.0]}, 'a', 'b') == [2.0, 2.0]  # < 4 repeats
    times = {'a': [2.0, 4.0, 9.0], 'b': [1.0, 1.0, 1.0]}  # ratios paired per repeat
    assert ratio(times, 'a', 'b') == 4.0 and ratio(times, 'b', 'a') == 0.25


def test_threads_are_pinned_for_the_block_only() -> None:
    before = torch.get_num_threads()
    with pinned_threads(1) as threads:
        assert threads == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pinned_threads(None) as threads:
        assert threads == before


def test_saved_bytes_count_activations_not_parameters() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    # the linear saves its input, the ReLU its output: 2 x [2, 4] fp32; weights are excluded
    assert saved_bytes(model, torch.randn(2, 4)) == 2 * 2 * 4 * 4
    assert saved_bytes(model.eval(), torch.randn(3, 4)) == 2 * 3 * 4 * 4  # train() again


def test_json_is_sorted_and_written_whole(tmp_path) -> None:
    path = tmp_path / 'report.json'
    text = to_json({'b': [1.5], 'a': {'z': 1, 'y': None}}, path)
    assert text == '{"a": {"y": null, "z": 1}, "b": [1.5]}'
    assert path.read_text() == text + '\n'
    assert json.loads(to_json({'x': 1}, indent=2)) == {'x': 1}
