"""Timing candidates side by side: interleaved repeats, per-repeat ratios, their medians and
quartiles, thread pinning, the load average, saved-activation accounting and JSON reports.

A figure is a ratio of two candidates timed in the same run. Their repeats are interleaved (the
order rotates each repeat), so that a machine shared with other work slows all of them alike;
the ratio is the median over repeats of the per-repeat ratio, given with its first and third
quartiles (how much the machine's noise moves it). Timings on a GPU synchronise the device
around each measurement.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ..fileio import write_text

__all__ = ['Timer', 'frame_times', 'interleaved', 'loadavg', 'machine', 'medians',
           'pinned_threads', 'ratio', 'saved_bytes', 'spread', 'to_json']

Times = dict[str, list[float]]  # candidate -> seconds of each repeat


class Timer:
    """Wall-clock timing of a callable on one device (CUDA work synchronised)."""

    def __init__(self, device: torch.device | str = 'cpu') -> None:
        self.cuda = torch.device(device).type == 'cuda'
        self._sync = torch.cuda.synchronize if self.cuda else (lambda: None)

    def __call__(self, fn: Callable[[], Any], inner: int = 1) -> float:
        """Seconds per call of ``fn``, averaged over ``inner`` back-to-back calls."""
        self._sync()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        self._sync()
        return (time.perf_counter() - start) / inner

    def calibrate(self, fn: Callable[[], Any], least_s: float = 0.02) -> int:
        """How many back-to-back calls make one measurement of at least ``least_s``, after a
        warm-up (allocator, kernel selection) of at least 3 calls and 0.05 s."""
        start = time.perf_counter()
        for i in range(1000):
            fn()
            if i >= 2 and time.perf_counter() - start > 0.05:
                break
        once = max(self(fn), 1e-6)
        return max(1, min(1000, int(least_s / once) + 1))


def interleaved(timer: Timer, candidates: Mapping[str, Callable[[], Any]], repeats: int,
                least_s: float = 0.02, inner: int | None = None, settle_s: float = 0.0
                ) -> Times:
    """Time each candidate ``repeats`` times, interleaved, in an order that rotates.

    Args:
        timer: Times one measurement.
        candidates: Name -> the work to time.
        repeats: Measurements per candidate.
        least_s: Each measurement repeats a candidate back to back until it takes at least
            this long (:meth:`Timer.calibrate`, which warms the candidate up). Defaults to 0.02.
        inner: Calls per measurement instead, with no calibration and no warm-up. Defaults
            to None.
        settle_s: Seconds idle (untimed) before each measurement, so that the worker threads
            of the candidate before (OpenMP's, ONNX Runtime's, OpenVINO's spin a while after
            a call) are asleep rather than taking cores from the next one. Defaults to 0.

    Returns:
        Name -> seconds per call, one entry per repeat.
    """
    counts = {k: inner or timer.calibrate(fn, least_s) for k, fn in candidates.items()}
    names = list(candidates)
    times: Times = {k: [] for k in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            if settle_s:
                time.sleep(settle_s)
            times[k].append(timer(candidates[k], counts[k]))
    return times


def frame_times(timer: Timer, variants: Mapping[str, Callable[[], Any]], frames: int,
                repeats: int) -> Times:
    """Seconds per frame of each variant, each call of which processes ``frames`` frames
    (the stream benchmarks: a clip offline, or its frames one step at a time).

    Every variant runs once first (a warm-up that allocates a stream's buffers), then
    ``repeats`` interleaved calls each (:func:`interleaved` with ``inner=1``).
    """
    for fn in variants.values():
        fn()
    times = interleaved(timer, variants, repeats, inner=1)
    return {k: [t / frames for t in v] for k, v in times.items()}


def ratio(times: Times, num: str, den: str) -> float:
    """Median over repeats of ``num / den`` measured in the same repeat."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def spread(times: Times, num: str, den: str) -> list[float]:
    """First and third quartiles over repeats of ``num / den``: how far the noise of the
    machine moves the ratio (the median twice with fewer than 4 repeats)."""
    ratios = [a / b for a, b in zip(times[num], times[den])]
    if len(ratios) < 4:
        return [statistics.median(ratios)] * 2
    q1, _, q3 = statistics.quantiles(ratios, n=4, method='inclusive')
    return [q1, q3]


def medians(times: Times) -> dict[str, float]:
    """Each candidate's median seconds."""
    return {k: statistics.median(v) for k, v in times.items()}


@contextlib.contextmanager
def pinned_threads(threads: int | None) -> Iterator[int]:
    """Run the block on ``threads`` torch CPU threads (None: torch's own choice), restored
    afterwards; yields the number in use."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def loadavg() -> float | None:
    """The 1-minute load average (a shared machine slows small parallel ops by whole
    scheduler slices: compare it with the number of cores), None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine(device: torch.device | str = 'cpu') -> str:
    """The GPU's name, or the CPU model."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves in one training forward of ``model`` on
    ``x`` (``torch.autograd.graph.saved_tensors_hooks``), parameters and buffers excluded."""
    skip = {t.untyped_storage().data_ptr() for t in
            list(model.parameters()) + list(model.buffers())}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return sum(seen.values())


def to_json(report: Mapping[str, Any], path: str | Path | None = None,
            indent: int | None = None) -> str:
    """The report as JSON (keys sorted), also written to ``path`` atomically when given
    (:func:`tsmnet.fileio.write_text`: a failed write keeps the old file)."""
    text = json.dumps(report, sort_keys=True, indent=indent)
    if path:
        write_text(path, text + '\n')
    return text
