"""OpenVINO IR files (``.xml`` + ``.bin``; the ``openvino`` extra: openvino 2026.4, nncf 3.4).

fp32 (``'openvino'``): ``torch.export`` of the module (the batch axis dynamic, as in ONNX),
converted by ``openvino.convert_model`` and saved with fp32 weights. The precision is chosen
when the file is loaded (the ``INFERENCE_PRECISION_HINT`` of the CPU plugin): ``'f32'``, or
``'bf16'`` where the CPU has AVX-512 BF16 or AMX (OpenVINO's own default there; about 1e-2
relative error). int8 (``'openvino-int8'``): NNCF's post-training quantization of the
converted model (its default: int8 weights and activations, min-max ranges over the
calibration inputs), with the same calibration data as ONNX int8.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..fileio import WriteError
from ..shift.functional import flat_frames

__all__ = ['PRECISIONS', 'available', 'core', 'openvino_runner', 'require', 'write_openvino']

PRECISIONS: tuple[str, ...] = ('f32', 'bf16')


def available() -> bool:
    """Whether OpenVINO is installed (the ``openvino`` extra)."""
    return importlib.util.find_spec('openvino') is not None


def require(int8: bool = False) -> None:
    """Raise a clear error where OpenVINO (and for int8, NNCF) is not installed."""
    if not available() or (int8 and importlib.util.find_spec('nncf') is None):
        raise ModuleNotFoundError("the openvino formats need OpenVINO and NNCF: pip install "
                                  "'tsmnet[openvino]' (openvino 2026.4, nncf 3.4)")


@functools.cache
def core() -> Any:
    """The process's one ``openvino.Core``, with its CPU plugin, kept until exit.

    Why one: a Core's CPU plugin gives the thread that makes it a new alternate signal stack
    and, when destroyed, puts back the one it found. Plugins destroyed in another order than
    made (a Core per runner, runners freed as they fall out of use) leave the thread on an
    unmapped stack, and the next signal handled there (a DataLoader worker's SIGCHLD, Ctrl-C)
    kills the process with SIGSEGV (OpenVINO 2026.4; tests/deploy/test_openvino.py shows it).
    One plugin made first, before NNCF's short-lived ones, keeps every restore in order.
    """
    import openvino as ov

    made = ov.Core()
    made.get_property('CPU', 'FULL_DEVICE_NAME')  # makes the CPU plugin now
    return made


def _convert(module: nn.Module, args: tuple[torch.Tensor, ...], dynamic: Any) -> Any:
    import openvino as ov

    # the shift with flat frames: the CPU plugin keeps its blocked layout through it
    with torch.no_grad(), flat_frames('select'):
        program = torch.export.export(module, args, dynamic_shapes=dynamic)
    return ov.convert_model(program)


def _save(model: Any, path: Path) -> None:
    """Save ``model`` as ``path`` (``.xml``) and its ``.bin``, both replaced at once: written in
    a temporary folder beside them, then renamed (the ``.bin`` first)."""
    import openvino as ov

    try:
        tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', dir=path.parent))
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}') from err
    try:
        ov.save_model(model, str(tmp / path.name), compress_to_fp16=False)
        os.replace(tmp / path.with_suffix('.bin').name, path.with_suffix('.bin'))
        os.replace(tmp / path.name, path)
    except OSError as err:
        raise WriteError(f'cannot write {path}: {err.strerror or err}') from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fix_shapes(model: Any, args: tuple[torch.Tensor, ...], dynamic: Any,
                names: tuple[Sequence[str], Sequence[str]] | None) -> None:
    """Give the converted ``model`` the example's shapes with only the batch axis dynamic
    (``torch.export`` leaves every axis dynamic in OpenVINO), and the ONNX files' input and
    output names, so that the IR says what it takes (``T``, the frame size, the buffers)."""
    import openvino as ov

    shapes = {}
    for port, arg in zip(model.inputs, args):
        dims = [ov.Dimension(d) for d in arg.shape]
        if dynamic is not None:
            dims[0] = ov.Dimension()
        shapes[port] = ov.PartialShape(dims)
    model.reshape(shapes)
    if names is not None:
        for ports, wanted in ((model.inputs, names[0]), (model.outputs, names[1])):
            for port, name in zip(ports, wanted):
                port.get_tensor().set_names({name})


def write_openvino(module: nn.Module, args: tuple[torch.Tensor, ...], path: str | Path,
                   dynamic: Any = None,
                   feeds: Iterable[Sequence[torch.Tensor]] | None = None,
                   names: tuple[Sequence[str], Sequence[str]] | None = None) -> None:
    """Convert ``module`` (traced on ``args``) to OpenVINO IR at ``path`` (``.xml``, beside it
    the ``.bin``); fp32, or int8 by NNCF when calibration ``feeds`` are given (one list of
    inputs per run). The inputs have the shapes of ``args`` (the batch axis dynamic when
    ``dynamic`` is given) and, with ``names``, the ``(input names, output names)``."""
    model = _convert(module, args, dynamic)
    _fix_shapes(model, args, dynamic, names)
    if feeds is not None:
        import nncf

        data = [tuple(t.detach().contiguous().numpy() for t in inputs) for inputs in feeds]
        if not data:
            raise ValueError('calibration gave no input for openvino-int8')
        core()  # our plugin before NNCF's (see core)
        model = nncf.quantize(model, nncf.Dataset(data), subset_size=len(data))
    _save(model, Path(path))


def openvino_runner(path: str | Path, precision: str = 'f32', threads: int | None = None,
                    report: bool = False):
    """A runner ``inputs -> outputs`` for an IR file on OpenVINO's CPU plugin.

    Args:
        path: The ``.xml`` (or an ``.onnx``, which OpenVINO reads too).
        precision: The inference precision hint: ``'f32'`` (default) or ``'bf16'``.
        threads: CPU threads. Defaults to None, OpenVINO's choice.
        report: Also return the precision the plugin took (``'f32'`` or ``'bf16'``: a CPU
            without bf16 runs f32 whatever the hint). Defaults to False.

    Returns:
        The runner, or ``(runner, precision taken)`` with ``report=True``.

    Raises:
        ValueError: An unknown ``precision``.
    """
    import openvino as ov

    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    config: dict[str, Any] = {'INFERENCE_PRECISION_HINT': precision}
    if threads:
        config['INFERENCE_NUM_THREADS'] = threads
    compiled = core().compile_model(str(path), 'CPU', config)
    request = compiled.create_infer_request()

    def run(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = request.infer([t.detach().cpu().float().contiguous().numpy() for t in inputs])
        return [torch.from_numpy(out[o].copy()) for o in compiled.outputs]

    if not report:
        return run
    taken = compiled.get_property('INFERENCE_PRECISION_HINT')
    return run, ('bf16' if taken == ov.Type.bf16 else 'f32')
