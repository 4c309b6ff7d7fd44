"""Online TSM: run a causal TSM backbone one frame at a time with cached shift buffers.

TSM's online mode (Lin, Gan & Han, ICCV 2019, https://arxiv.org/abs/1811.08383, section
"Online models with uni-directional TSM") shifts one fold of channels from the past only. A
model built with ``shift_mode='causal'`` computes frame ``t`` from frames ``<= t``, and every
shift site needs just one thing from the previous frame: its first ``C // shift_div`` input
channels. Any tsmnet backbone whose only temporal modules are :class:`~tsmnet.TemporalShift`
sites streams: ResNetTSM (16 sites for ResNet-50) and MobileNetV2TSM (10 sites, the network
of TSM's online demo), and their plain 2D versions trivially. :class:`TSMStream` keeps
those folds in one buffer per site, so each new frame costs one pass of the 2D network, and
the result equals, frame for frame, what the offline model gives for the whole clip.

The user's model is never modified: the stream runs a structural copy of it whose modules
share the model's parameters and buffers (so later weight loads, ``.to(device)`` and
``.half()`` are seen), with every :class:`~tsmnet.TemporalShift` replaced by a streaming shift
that reads the past fold from its site's buffer. :meth:`TSMStream.step_module` gives the same
step as a pure function of ``(frames, *buffers)`` for export, e.g. to ONNX.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from mmcv.cnn.bricks.non_local import _NonLocalNd
from torch import nn

from ._torch_compat import ConvBase
from .fileio import atomic_folder
from .fuse import LiveFoldedConv, foldable
from .layers import NL3DWrapper, TemporalPool, TemporalShift
from .models.mobilenet_v2 import MobileNetV2
from .models.mobileone import MobileOne
from .models.resnet import ResNet
from .models.resnet_tsm import ResNetTSM

Features = torch.Tensor | tuple[torch.Tensor, ...]

# The backbones that stream, each with the forward that TSMStream runs one frame at a time:
# the network itself, without the checks of whole clips (a batch of num_segments frames).
_STAGES: tuple[tuple[type[nn.Module], Callable[..., Features]], ...] = (
    (ResNet, ResNet.forward),
    (MobileNetV2, MobileNetV2.forward_stages),
    (MobileOne, MobileOne.forward_stages),  # and MobileOneTSM, training or deploy form
)
# The public forwards whose work is exactly that (checks, then the stages).
_KNOWN_FORWARDS = (ResNet.forward, ResNetTSM.forward, MobileNetV2.forward, MobileOne.forward)


def _stages_of(model: nn.Module) -> Callable[..., Features] | None:
    """The per-frame forward of a tsmnet backbone, or None for another module."""
    return next((fn for cls, fn in _STAGES if isinstance(model, cls)), None)


def _frame_channels(model: nn.Module) -> int:
    """Channels of the frames ``model`` takes: those of its first conv."""
    conv = next(m for m in model.modules() if isinstance(m, ConvBase))
    return conv.in_channels


class _SiteState:
    """What the streaming shifts of one network copy read and write during a step.

    ``buffers`` holds the persistent per-site folds (eager streaming, updated in place);
    in functional mode, ``inputs`` are the folds given to the step and ``outputs`` collects
    the folds it produces.
    """

    def __init__(self) -> None:
        self.functional = False
        self.buffers: list[torch.Tensor | None] = []
        self.inputs: Sequence[torch.Tensor] = ()
        self.outputs: list[torch.Tensor | None] = []

    def resize(self, num_sites: int) -> None:
        """Make room for ``num_sites`` sites (called once, after the copy is built)."""
        self.buffers = [None] * num_sites
        self.outputs = [None] * num_sites


class _StreamingShift(nn.Module):
    """A causal :class:`~tsmnet.TemporalShift` for one frame per stream, then ``net``.

    Channels ``[0, fold)`` of the frame are replaced by those of the previous frame of the
    same stream (read from the site's buffer), and the frame's own ``[0, fold)`` become the
    buffer for the next step.

    Args:
        net: The wrapped module of the original shift (shared, not copied).
        shift_div: The fold is ``C // shift_div`` channels.
        index: This site's index among the network's shift sites.
        name: The original module's path, for error messages.
        state: The state object shared by the sites of one network copy.
    """

    def __init__(self, net: nn.Module, shift_div: int, index: int, name: str,
                 state: _SiteState) -> None:
        super().__init__()
        self.net = net
        self.shift_div = shift_div
        self.index = index
        self.name = name
        self.state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: ``[N, C, H, W]``, one frame per stream. Returns: ``net`` of the shifted
        frame."""
        fold = x.shape[1] // self.shift_div
        state = self.state
        if state.functional:
            past = state.inputs[self.index]
            self._check(past, x, fold, 'buffer input')
            state.outputs[self.index] = x[:, :fold]
            return self.net(torch.cat((past, x[:, fold:]), dim=1))
        buffer = state.buffers[self.index]
        if buffer is None:  # the first step allocates; later steps reuse
            with torch.inference_mode(False):  # a normal tensor even under inference_mode
                buffer = x.new_zeros((x.shape[0], fold) + tuple(x.shape[2:]))
            state.buffers[self.index] = buffer
        else:
            self._check(buffer, x, fold, 'buffer')
        if x.is_contiguous():  # one kernel
            shifted = torch.cat((buffer, x[:, fold:]), dim=1)
        else:  # keep x's memory format (channels_last...)
            shifted = torch.empty_like(x)
            shifted[:, :fold] = buffer
            shifted[:, fold:] = x[:, fold:]
        buffer.copy_(x[:, :fold])
        return self.net(shifted)

    def _check(self, buffer: torch.Tensor, x: torch.Tensor, fold: int, what: str) -> None:
        expected = (x.shape[0], fold) + tuple(x.shape[2:])
        if tuple(buffer.shape) != expected:
            raise ValueError(
                f'shift site {self.index} ({self.name}): the {what} has shape '
                f'{tuple(buffer.shape)} but this frame needs {expected} '
                f'([N, C // shift_div, H, W]); the number of streams and the frame size must '
                f'stay those of the first step (make a new TSMStream for others)')
        if buffer.dtype != x.dtype or buffer.device != x.device:
            raise ValueError(
                f'shift site {self.index} ({self.name}): the {what} is {buffer.dtype} on '
                f'{buffer.device} but the activations are {x.dtype} on {x.device}; the model '
                f'changed dtype or device after the first step (make a new TSMStream)')

    def extra_repr(self) -> str:
        return f'site={self.index}, shift_div={self.shift_div}'


def _refusal(name: str, module: nn.Module) -> str | None:
    """Why ``module`` (at path ``name``) cannot run one frame at a time, or None."""
    where = f'{name} ({type(module).__name__})'
    if isinstance(module, TemporalPool):
        return (f'{where} pools time (temporal_pool=True): it max-pools frames t - 1, t and '
                f't + 1 with stride 2, so an output frame needs a future frame and the frame '
                f'rate halves. Build the model with temporal_pool=False')
    if isinstance(module, (NL3DWrapper, _NonLocalNd)):
        return (f'{where} is a non-local block: it attends over all frames of the clip, the '
                f'future ones included. Build the model with non_local=(0, 0, 0, 0)')
    if isinstance(module, TemporalShift):
        if type(module).forward is not TemporalShift.forward or \
                type(module).shift is not TemporalShift.shift:
            return (f'{where} overrides the shift of TemporalShift; only the causal shift of '
                    f'tsmnet.TemporalShift has a known streaming form')
        if module.shift_mode != 'causal':
            return (f'{where} has shift_mode={module.shift_mode!r}: frame t reads channels '
                    f'of frame t + 1, which a stream has not seen yet. Build (and train) the '
                    f"model with shift_mode='causal'")
        return None
    if hasattr(module, 'num_segments'):
        return (f'{where} works on whole clips of num_segments={module.num_segments} frames '
                f'and has no known streaming form')
    return None


def _streaming_copy(module: nn.Module, state: _SiteState, sites: list[str],
                    prefix: str = '', fold: bool = False,
                    norm: nn.Module | None = None) -> nn.Module:
    """A copy of the module tree sharing every parameter and buffer, with each
    TemporalShift replaced by a :class:`_StreamingShift` (appending its path to ``sites``).

    With ``fold``, each ``ConvModule`` whose batch norm follows its conv
    (:func:`tsmnet.fuse.foldable`) runs as one :class:`~tsmnet.fuse.LiveFoldedConv` (``norm``
    carries that batch norm down to its conv, through a shift that wraps the conv)."""
    if isinstance(module, TemporalShift):
        net = _streaming_copy(module.net, state, sites, f'{prefix}net.', fold, norm)
        index = len(sites)
        sites.append(prefix.rstrip('.'))
        return _StreamingShift(net, module.shift_div, index, sites[-1], state)
    clone = copy.copy(module)  # shares _parameters and _buffers: the weights stay the model's
    if norm is not None and isinstance(module, nn.Conv2d):
        return LiveFoldedConv(clone, norm)
    fold_here = fold and foldable(module)
    children: dict[str, nn.Module | None] = {}
    for name, child in module._modules.items():
        if child is None:
            children[name] = None
        elif fold_here and name == module.norm_name:  # type: ignore[union-attr]
            children[name] = nn.Identity()
        else:
            children[name] = _streaming_copy(
                child, state, sites, f'{prefix}{name}.', fold,
                copy.copy(module.norm) if fold_here and name == 'conv' else None)
    object.__setattr__(clone, '_modules', children)
    return clone


def _eval(module: nn.Module) -> None:
    """Set eval mode on our own copies only (``ResNet.train`` would also refreeze stages)."""
    for m in module.modules():
        m.training = False


class TSMStreamStep(nn.Module):
    """One streaming step as a pure function of the frame and the buffers, for export.

    ``forward(frames, *buffers)`` returns ``(*features, *new_buffers)``: the features of each
    stage in the model's ``out_indices`` followed by one new buffer per shift site. Start with
    :meth:`TSMStream.zero_buffers` and feed each step's new buffers to the next step. Made by
    :meth:`TSMStream.step_module`; shares the model's weights.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        stages = _stages_of(model)
        if stages is None:
            raise TypeError(f'TSMStreamStep needs a tsmnet backbone, got {type(model).__name__}')
        self._stages = stages
        sites: list[str] = []
        self._state = _SiteState()
        self.net = _streaming_copy(model, self._state, sites)
        self._state.resize(len(sites))
        self.sites: tuple[str, ...] = tuple(sites)
        _eval(self)

    def train(self, mode: bool = True) -> TSMStreamStep:
        """The step is inference only: it stays in eval mode (BatchNorm with running
        statistics) whatever ``mode`` is asked. Returns ``self``."""
        _eval(self)
        return self

    def forward(self, frames: torch.Tensor, *buffers: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Args:
            frames: ``[N, C, H, W]``, one frame of each of ``N`` streams.
            *buffers: One ``[N, C_i // shift_div, H_i, W_i]`` tensor per shift site: the
                folds of the previous frame (zeros before the first frame).

        Returns: ``(*features, *new_buffers)``.
        """
        if len(buffers) != len(self.sites):
            raise ValueError(f'the step takes one buffer per shift site ({len(self.sites)}), '
                             f'got {len(buffers)}')
        state = self._state
        state.functional, state.inputs = True, buffers
        state.outputs = [None] * len(self.sites)
        try:
            out = self._stages(self.net, frames)
            new = tuple(state.outputs)
        finally:
            state.functional, state.inputs = False, ()
            state.outputs = [None] * len(self.sites)
        features = out if isinstance(out, tuple) else (out,)
        return (*features, *new)  # type: ignore[arg-type]


def step_names(num_features: int, num_buffers: int) -> tuple[list[str], list[str]]:
    """Input and output names of an exported step: ``frames, buffer_0 ...`` and ``features``
    (``features_0 ...`` with several outputs) or ``scores``, then ``new_buffer_0 ...``.

    Args:
        num_features: Outputs before the buffers; 0 means one ``scores`` output.
        num_buffers: Shift sites.
    """
    inputs = ['frames'] + [f'buffer_{i}' for i in range(num_buffers)]
    if num_features == 0:
        outputs = ['scores']
    elif num_features == 1:
        outputs = ['features']
    else:
        outputs = [f'features_{j}' for j in range(num_features)]
    return inputs, outputs + [f'new_buffer_{i}' for i in range(num_buffers)]


class TSMStream:
    """Frame-by-frame inference of a causal TSM backbone over ``N`` parallel streams.

    ``step(frames)`` with frames ``[N, C, H, W]`` (frame ``t`` of each of ``N`` streams)
    returns the features of that frame, equal to what the model gives for frame ``t`` of the
    whole clip ``[N * T, C, H, W]``. One buffer ``[N, C_i // shift_div, H_i, W_i]`` per shift
    site is allocated at the first step (sized by its ``N`` and frame size, on the device and
    in the dtype of the activations) and reused: nothing grows per step.

    The stream runs in eval mode (BatchNorm with running statistics) and without autograd,
    whatever mode the model is in, and never modifies the model: it runs a copy of the module
    tree that shares the model's parameters and buffers. Loading weights or moving the model
    to another device or dtype is seen by the stream, but the buffers stay where the first
    step put them: make a new stream after a move. Replacing submodules is not seen.

    Example::

        model = MobileNetV2TSM(shift_mode='causal').eval()  # or ResNetTSM(50, ...)
        stream = TSMStream(model)
        for frame in camera:             # [1, 3, 224, 224]
            features = stream.step(frame)  # [1, 1280, 7, 7]

    Args:
        model: A tsmnet :class:`~tsmnet.ResNetTSM` or :class:`~tsmnet.MobileNetV2TSM` built
            with ``shift_mode='causal'`` (or a plain :class:`~tsmnet.ResNet` or
            :class:`~tsmnet.MobileNetV2`, which have no shift and stream trivially).
        fold_batch_norms: Run each conv and the batch norm after it as one conv whose
            weights are folded from the model's current ones (:class:`tsmnet.fuse.
            LiveFoldedConv`, refolded after a weight load, a move or a cast): one pass over
            the activations fewer per conv, which is what a single frame pays most for. The
            features then equal the offline model's up to float rounding (about 1e-6
            relative in float32) rather than to the last bit. Defaults to True.

    Raises:
        TypeError: ``model`` is not a tsmnet backbone, or overrides its forward.
        ValueError: The model cannot be streamed exactly: temporal pooling, non-local blocks
            or a bidirectional shift (each needs future frames).
    """

    def __init__(self, model: nn.Module, fold_batch_norms: bool = True) -> None:
        if not isinstance(fold_batch_norms, bool):
            raise TypeError(f'fold_batch_norms must be a bool, got {fold_batch_norms!r}')
        stages = _stages_of(model)
        if stages is None:
            raise TypeError(f'TSMStream needs a tsmnet ResNetTSM or MobileNetV2TSM (or the 2D '
                            f'ResNet, MobileNetV2) backbone, got {type(model).__name__}: it '
                            f'runs the backbone\'s stem and stages one frame at a time and '
                            f'knows how to stream only tsmnet shifts')
        if type(model).forward not in _KNOWN_FORWARDS:
            raise TypeError(f'{type(model).__name__} overrides forward(); TSMStream runs the '
                            f'backbone\'s stages one frame at a time and would ignore the '
                            f'override')
        reasons = [why for name, m in model.named_modules()
                   if name and (why := _refusal(name, m)) is not None]
        if reasons:
            raise ValueError('this model cannot be streamed frame by frame exactly: '
                             + '; '.join(reasons))
        self.model = model
        self._stages = stages
        self._in_channels = _frame_channels(model)
        sites: list[str] = []
        self._state = _SiteState()
        self._net = _streaming_copy(model, self._state, sites, fold=fold_batch_norms)
        self._state.resize(len(sites))
        self.sites: tuple[str, ...] = tuple(sites)
        _eval(self._net)
        self._shape: tuple[int, ...] | None = None

    @property
    def num_sites(self) -> int:
        """The number of shift sites (one buffer each)."""
        return len(self.sites)

    @property
    def num_streams(self) -> int | None:
        """``N`` of the first step, or None before it."""
        return None if self._shape is None else self._shape[0]

    @property
    def buffers(self) -> tuple[torch.Tensor, ...]:
        """The per-site buffers (empty before the first step); read only."""
        return tuple(b for b in self._state.buffers if b is not None)

    def step(self, frames: torch.Tensor) -> Features:
        """Process the next frame of every stream.

        Args:
            frames: ``[N, C, H, W]``: one frame from each of ``N`` streams. ``N`` and the frame
                size must stay those of the first step.

        Returns:
            The features of this frame for each stage in the model's ``out_indices``,
            ``[N, C', H', W']`` (one tensor when there is one stage), equal to the offline
            output of the same frame of the clip.
        """
        if not isinstance(frames, torch.Tensor):
            raise TypeError(f'frames must be a torch.Tensor, got {type(frames).__name__}')
        if frames.dim() != 4 or frames.shape[0] == 0:
            raise ValueError(f'frames must be 4-D [N, C, H, W] with N >= 1 (one frame per '
                             f'stream), got shape {tuple(frames.shape)}')
        if frames.shape[1] != self._in_channels:
            raise ValueError(f'frames must have in_channels={self._in_channels} channels, '
                             f'got shape {tuple(frames.shape)}')
        if not frames.is_floating_point():
            raise TypeError(f'frames must be a floating-point tensor, got {frames.dtype}')
        shape = tuple(frames.shape)
        if self._shape is not None and shape != self._shape:
            raise ValueError(f'frames must keep the shape of the first step {self._shape} '
                             f'(N streams, C, H, W), got {shape}: the buffers are sized by it; '
                             f'make a new TSMStream for another number of streams or size')
        with torch.no_grad():
            out = self._stages(self._net, frames)
        self._shape = shape
        return out

    __call__ = step

    def reset(self, index: int | Sequence[int] | None = None) -> None:
        """Forget the past: of every stream (``index=None``), or of the streams in ``index``.

        The buffers are zeroed in place (as before a first frame), never reallocated.
        """
        if index is None:
            rows: int | list[int] | slice = slice(None)
        else:
            items = [index] if isinstance(index, int) else (
                list(index) if isinstance(index, Sequence) else [index])
            n = self.num_streams
            for i in items:
                if isinstance(i, bool) or not isinstance(i, int):
                    raise TypeError(f'index must be an int, a sequence of ints or None, '
                                    f'got {index!r}')
                if n is not None and not -n <= i < n:
                    raise IndexError(f'index {i} is out of range for {n} streams')
            rows = items
        with torch.no_grad(), torch.inference_mode(False):
            for buffer in self.buffers:
                buffer[rows] = 0

    def step_module(self) -> TSMStreamStep:
        """The step as a module ``(frames, *buffers) -> (*features, *new_buffers)`` sharing
        the model's weights, e.g. for ``torch.onnx.export``; independent of this stream's
        buffers."""
        return TSMStreamStep(self.model)

    def zero_buffers(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Zero buffers for :class:`TSMStreamStep`, one per site, for frames shaped like
        ``frames`` ``[N, C, H, W]`` (one probe pass of the network; this stream's own buffers
        are untouched)."""
        probe = TSMStream(self.model, fold_batch_norms=False)  # only the buffers' shapes
        probe.step(frames)
        return [torch.zeros_like(b) for b in probe.buffers]

    def export_onnx(self, path: str | Path, frames: torch.Tensor, *,
                    dynamic_streams: bool = True, **kwargs: Any) -> tuple[list[str], list[str]]:
        """Export :meth:`step_module` to ONNX with the buffers as explicit inputs and outputs.

        Inputs are ``frames`` ``[N, C, H, W]`` and ``buffer_0 ... buffer_{S-1}``; outputs are
        ``features`` (``features_0 ...`` with several ``out_indices``) and ``new_buffer_0 ...``.
        Feed zeros (shapes from :meth:`zero_buffers`) as the first buffers and each step's
        ``new_buffer_i`` as the next step's ``buffer_i``.

        Args:
            path: The ``.onnx`` file to write, atomically: an export that fails leaves the
                previous file and no partial one. The weights are inside the file (below
                ONNX's 2 GB limit; beyond it in ``NAME.onnx.data`` beside it).
            frames: An example ``[N, C, H, W]``; its ``C``, ``H``, ``W`` (and ``N`` unless
                ``dynamic_streams``) are fixed in the graph.
            dynamic_streams: Leave ``N`` symbolic, so one file serves any number of streams.
                Defaults to True.
            **kwargs: More arguments of ``torch.onnx.export`` (e.g. ``opset_version``).

        :func:`tsmnet.export` with ``kind='step'`` does the same and checks the file against
        eager (and writes int8 and ExecuTorch files).

        Returns:
            The input names and the output names.
        """
        if dynamic_streams:  # an example of one stream would pin N to 1
            frames = frames[:1].expand(2, *frames.shape[1:]).contiguous()
        buffers = self.zero_buffers(frames)
        input_names, output_names = step_names(len(self.model.out_indices), len(buffers))
        if dynamic_streams:
            streams = torch.export.Dim('streams', min=1)
            dynamic: dict[str, Any] = {'frames': {0: streams}}
            if buffers:  # a plain ResNet or MobileNetV2 has none
                dynamic['buffers'] = tuple({0: streams} for _ in buffers)
            kwargs.setdefault('dynamic_shapes', dynamic)
        kwargs.setdefault('dynamo', True)
        kwargs.setdefault('verbose', False)
        kwargs.setdefault('external_data', False)  # inside the file, below ONNX's 2 GB
        with atomic_folder(path) as tmp:  # beyond it, NAME.onnx.data, named after the model
            torch.onnx.export(self.step_module(), (frames, *buffers), str(tmp),
                              input_names=input_names, output_names=output_names, **kwargs)
        return input_names, output_names

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({type(self.model).__name__}, sites={self.num_sites}, '
                f'streams={self.num_streams})')
