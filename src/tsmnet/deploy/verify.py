"""Checking a written file against eager PyTorch: run it by its runtime, compare the outputs.

A runner is a function ``inputs (tensors) -> outputs (tensors)`` for one file. The clip model
is compared on the example and on a batch of another size (the batch axis is dynamic in
ONNX); the step on the example (zero buffers) and over a streamed clip, each side feeding its
own new buffers back, so errors that accumulate through the buffers show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ['Comparison', 'compare', 'onnx_runner', 'stream_outputs', 'top1']

Runner = Callable[[Sequence[torch.Tensor]], list[torch.Tensor]]


def onnx_runner(path: str, threads: int | None = None) -> Runner:
    """A runner for an ``.onnx`` file on ONNX Runtime's CPU provider (inputs in graph order)."""
    import onnxruntime as ort  # optional dependency (the onnx extra)

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]

    def run(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        feed = {n: t.detach().cpu().contiguous().numpy() for n, t in zip(names, inputs)}
        return [torch.from_numpy(a) for a in session.run(None, feed)]

    return run


def eager_runner(module: nn.Module) -> Runner:
    """A runner for the eager module (no autograd)."""

    def run(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad():
            out = module(*inputs)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    return run


def top1(y: torch.Tensor) -> torch.Tensor:
    """The top class (``[N, K]``) or the top channel of spatially averaged features
    (``[N, C, h, w]``): ``[N]``."""
    y = y.float()
    if y.dim() > 2:
        y = y.flatten(2).mean(-1)
    return y.argmax(dim=1)


@dataclass
class Comparison:
    """Differences between a file's first output and eager's over some runs.

    Attributes:
        max_abs_diff: Largest absolute difference.
        max_abs_ref: Largest absolute eager value (the scale of the difference).
        cosine: Cosine similarity of all outputs, flattened.
        top1_agreement: Fraction of rows whose top-1 (:func:`top1`) is the same.
        rows: Rows compared.
    """

    max_abs_diff: float
    max_abs_ref: float
    cosine: float
    top1_agreement: float
    rows: int

    @property
    def relative_diff(self) -> float:
        """``max_abs_diff / max_abs_ref``."""
        return self.max_abs_diff / max(self.max_abs_ref, 1e-30)


def compare(ref: Sequence[torch.Tensor], got: Sequence[torch.Tensor]) -> Comparison:
    """Compare outputs (one tensor per run, the same shapes)."""
    if len(ref) != len(got):
        raise ValueError(f'expected {len(ref)} outputs, got {len(got)}')
    for r, g in zip(ref, got):
        if tuple(r.shape) != tuple(g.shape):
            raise ValueError(f'the file gives an output of shape {tuple(g.shape)} where eager '
                             f'gives {tuple(r.shape)}')
    r = torch.cat([t.detach().double().flatten() for t in ref])
    g = torch.cat([t.detach().double().flatten() for t in got])
    cosine = float(torch.nn.functional.cosine_similarity(r, g, dim=0)) if r.numel() else 1.0
    agree = torch.cat([top1(a) == top1(b) for a, b in zip(ref, got)])
    return Comparison(max_abs_diff=float((r - g).abs().max()), max_abs_ref=float(r.abs().max()),
                      cosine=cosine, top1_agreement=float(agree.float().mean()),
                      rows=int(agree.numel()))


def stream_outputs(run: Runner, frames: torch.Tensor, buffers: Sequence[torch.Tensor],
                   num_outputs: int = 1) -> list[torch.Tensor]:
    """Stream ``frames`` ``[N, T, C, H, W]`` through a step runner from ``buffers``, feeding
    each step's new buffers to the next; the first output of every step (``T`` tensors)."""
    outputs = []
    state = list(buffers)
    for t in range(frames.shape[1]):
        out = run([frames[:, t].contiguous(), *state])
        outputs.append(out[0])
        state = out[num_outputs:]
    return outputs
