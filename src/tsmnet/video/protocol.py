"""The test-time protocol of a zoo entry: how MMAction2's test pipeline samples and crops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

_CROPS = {'CenterCrop': 'center', 'ThreeCrop': 'three', 'TenCrop': 'ten'}
_NUM_CROPS = {'center': 1, 'three': 3, 'ten': 10}
_IGNORED = {'DecordInit', 'DecordDecode', 'PyAVInit', 'PyAVDecode', 'OpenCVInit',
            'OpenCVDecode', 'FormatShape', 'PackActionInputs'}


@dataclass(frozen=True)
class TestProtocol:
    """MMAction2's test pipeline of a TSM config, as data.

    Args:
        num_clips: segments sampled over the video (``SampleFrames(num_clips=...)``).
        clip_len: frames per segment (1 for TSM).
        frame_interval: the step between the frames of a segment.
        twice_sample: also sample the segments' starts (``SampleFrames(twice_sample=True)``),
            doubling the clips.
        dense: dense sampling (``DenseSampleFrames``) instead of uniform segments.
        num_test_clips: clips drawn by dense sampling (``num_sample_positions``; ignored
            otherwise).
        resize_short: the short side after ``Resize(scale=(-1, resize_short))``.
        crop: ``'center'`` (``CenterCrop``), ``'three'`` (``ThreeCrop``) or ``'ten'``
            (``TenCrop``).
        crop_size: the side of each square crop.
        mean: per-channel RGB mean on the 0-255 scale (``ActionDataPreprocessor``).
        std: per-channel RGB std on the 0-255 scale.
        average_clips: how views are averaged: ``'prob'``, ``'score'`` or None.
        sample_range: the span of one dense clip in frames (``DenseSampleFrames``).
    """

    __test__ = False  # not a pytest test class, despite its name

    num_clips: int = 8
    clip_len: int = 1
    frame_interval: int = 1
    twice_sample: bool = False
    dense: bool = False
    num_test_clips: int = 1
    resize_short: int = 256
    crop: Literal['center', 'three', 'ten'] = 'ten'
    crop_size: int = 224
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    average_clips: Literal['prob', 'score'] | None = 'prob'
    sample_range: int = 64

    def __post_init__(self) -> None:
        for name in ('num_clips', 'clip_len', 'frame_interval', 'num_test_clips',
                     'resize_short', 'crop_size', 'sample_range'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'TestProtocol.{name} must be an integer >= 1, got {value!r}')
        if self.crop not in _NUM_CROPS:
            raise ValueError("TestProtocol.crop must be one of 'center', 'three', 'ten', got "
                             f'{self.crop!r}')
        if self.average_clips not in ('prob', 'score', None):
            raise ValueError("TestProtocol.average_clips must be 'prob', 'score' or None, got "
                             f'{self.average_clips!r}')
        if self.crop_size > self.resize_short:
            raise ValueError(f'TestProtocol.crop_size={self.crop_size} is larger than the '
                             f'resized short side {self.resize_short}')

    @property
    def num_segments(self) -> int:
        """Frames per view: the model's T (``num_clips * clip_len``)."""
        return self.num_clips * self.clip_len

    @property
    def num_crops(self) -> int:
        """Crops per frame: 1, 3 or 10."""
        return _NUM_CROPS[self.crop]

    @property
    def num_views(self) -> int:
        """Views of one video (temporal clips x crops), averaged per ``average_clips``."""
        clips = self.num_test_clips if self.dense else 2 if self.twice_sample else 1
        return clips * self.num_crops

    def with_views(self, clips: int | None = None, crops: int | None = None) -> TestProtocol:
        """A copy with fewer (or more) views: ``clips`` temporal clips, ``crops`` of 1/3/10.

        ``clips`` is the dense sampling's ``num_test_clips``; for uniform sampling it is 1,
        or 2 with ``twice_sample``.
        """
        changes: dict[str, Any] = {}
        if clips is not None:
            if self.dense:
                changes['num_test_clips'] = clips
            elif clips in (1, 2):
                changes['twice_sample'] = clips == 2
            else:
                raise ValueError('uniform sampling has 1 clip (2 with twice_sample), got '
                                 f'clips={clips}')
        if crops is not None:
            kinds = {v: k for k, v in _NUM_CROPS.items()}
            if crops not in kinds:
                raise ValueError(f'crops must be 1, 3 or 10, got {crops}')
            changes['crop'] = kinds[crops]
            if crops == 3:  # ThreeCrop spans the short side
                changes['crop_size'] = self.resize_short
        return replace(self, **changes)

    @classmethod
    def from_pipeline(cls, pipeline: Sequence[Mapping[str, Any]], **fields: Any
                      ) -> TestProtocol:
        """Read an MMAction2 ``test_pipeline`` (a list of transform dicts) as a protocol.

        Args:
            pipeline: e.g. ``cfg.test_pipeline``: ``SampleFrames`` or ``DenseSampleFrames``
                (test mode), ``Resize(scale=(-1, N))``, one crop, loading and formatting steps.
            **fields: the fields a pipeline does not hold (``mean``, ``std``,
                ``average_clips``: the model's data preprocessor and head).

        Raises:
            ValueError: for a transform or an argument the protocol cannot express.
        """
        found: dict[str, Any] = {}
        for step in pipeline:
            kind = step.get('type')
            args = {k: v for k, v in step.items() if k != 'type'}
            if kind in ('SampleFrames', 'DenseSampleFrames'):
                found.update(num_clips=args.pop('num_clips', 1), clip_len=args.pop('clip_len'),
                             frame_interval=args.pop('frame_interval', 1))
                if not args.pop('test_mode', False):
                    raise ValueError(f'{kind} must have test_mode=True in a test pipeline')
                if kind == 'DenseSampleFrames':
                    found.update(dense=True,
                                 num_test_clips=args.pop('num_sample_positions', 10),
                                 sample_range=args.pop('sample_range', 64))
                else:
                    found['twice_sample'] = bool(args.pop('twice_sample', False))
                if args.pop('out_of_bound_opt', 'loop') != 'loop':
                    raise ValueError(f"{kind}: only out_of_bound_opt='loop' is supported")
            elif kind == 'Resize':
                scale = tuple(args.pop('scale'))
                if len(scale) != 2 or min(scale) != -1 or not args.pop('keep_ratio', True):
                    raise ValueError(f'Resize: only scale=(-1, N) is supported, got {scale}')
                if args.pop('interpolation', 'bilinear') != 'bilinear':
                    raise ValueError("Resize: only interpolation='bilinear' is supported")
                found['resize_short'] = max(scale)
            elif kind in _CROPS:
                size = args.pop('crop_size')
                if isinstance(size, (tuple, list)):
                    if len(size) != 2 or size[0] != size[1]:
                        raise ValueError(f'{kind}: only square crops are supported, got {size}')
                    size = size[0]
                found.update(crop=_CROPS[kind], crop_size=size)
            elif kind == 'FormatShape':
                if args.get('input_format') != 'NCHW':
                    raise ValueError("FormatShape: only input_format='NCHW' (2D models) is "
                                     f'supported, got {args.get("input_format")!r}')
                args.clear()
            elif kind in _IGNORED:
                args.clear()
            else:
                raise ValueError(f'test pipeline step {kind!r} is not supported (supported: '
                                 'SampleFrames, DenseSampleFrames, Resize, CenterCrop, '
                                 'ThreeCrop, TenCrop, FormatShape and decoding steps)')
            args.pop('lazy', None)
            if args:
                raise ValueError(f'{kind}: unsupported arguments {sorted(args)}')
        for name, step in (('num_clips', 'SampleFrames'), ('resize_short', 'Resize'),
                           ('crop', 'a crop')):
            if name not in found:
                raise ValueError(f'the test pipeline has no {step} step')
        return cls(**{**found, **fields})
