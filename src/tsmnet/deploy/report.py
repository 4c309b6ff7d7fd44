"""The report of one export: the file, and how it compares with eager PyTorch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .verify import Comparison

__all__ = ['BOUNDS', 'ExportReport']

# the agreement a file must reach on every check: (relative max abs difference, cosine)
BOUNDS: dict[str, tuple[float, float]] = {
    'onnx': (1e-3, 0.0), 'pte': (1e-3, 0.0), 'openvino': (1e-3, 0.0),  # fp32: up to rounding
    'onnx-int8': (float('inf'), 0.95), 'pte-int8': (float('inf'), 0.95),  # int8: close
    'openvino-int8': (float('inf'), 0.95),
}


@dataclass
class ExportReport:
    """What was written and how it compares with eager.

    Attributes:
        path: The file.
        format: One of :data:`tsmnet.deploy.api.FORMATS`.
        kind: ``'clip'`` or ``'step'``.
        inputs: Input names (ONNX) or descriptions.
        outputs: Output names.
        size_bytes: The file's size.
        checks: Comparison per check: ``'example'``, and ``'streamed clip'`` (step) or
            ``'batch of N'`` (clip, another batch size).
        seconds: Time the export and the checks took.
        notes: Anything worth telling (the quantization settings...).
    """

    path: Path
    format: str
    kind: str
    inputs: list[str]
    outputs: list[str]
    size_bytes: int
    checks: dict[str, Comparison] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def bound(self) -> str:
        """The format's bound, in words."""
        relative, cosine = BOUNDS[self.format]
        return (f'max abs difference <= {relative:g} x max |eager|' if cosine == 0.0
                else f'cosine similarity >= {cosine:g}')

    @property
    def ok(self) -> bool:
        """Every check is within the format's bound."""
        relative, cosine = BOUNDS[self.format]
        return all(c.relative_diff <= relative and c.cosine >= cosine
                   for c in self.checks.values())

    @property
    def max_abs_diff(self) -> float:
        """The largest absolute difference over the checks."""
        return max((c.max_abs_diff for c in self.checks.values()), default=0.0)

    @property
    def top1_agreement(self) -> float:
        """The lowest top-1 agreement over the checks."""
        return min((c.top1_agreement for c in self.checks.values()), default=1.0)

    def lines(self) -> list[str]:
        """The report in a few lines, for people."""
        out = [f'wrote {self.path} ({self.format}, {self.kind}, {self.size_bytes / 1e6:.2f} MB, '
               f'{self.seconds:.1f} s)',
               f'  inputs {", ".join(self.inputs[:3])}{" ..." if len(self.inputs) > 3 else ""}'
               f' ({len(self.inputs)}); outputs {", ".join(self.outputs[:2])}'
               f'{" ..." if len(self.outputs) > 2 else ""} ({len(self.outputs)})']
        for name, c in self.checks.items():
            out.append(f'  vs eager on {name}: max abs diff {c.max_abs_diff:.3g} (max |eager| '
                       f'{c.max_abs_ref:.3g}), cosine {c.cosine:.6f}, top-1 agreement '
                       f'{100 * c.top1_agreement:.1f}% of {c.rows}')
        out.extend(f'  {note}' for note in self.notes)
        out.append(f'  {"ok" if self.ok else "FAILED"}: {self.bound}')
        return out
