"""The named weights: MMAction2 1.2.0's released TSM checkpoints, one entry each, as data.

Names are MMAction2's config names. Each entry holds the architecture (backbone and head
arguments, as in the config), the checkpoint URL and the sha256 prefix its file name carries,
the dataset and its class names, the published accuracy with its source, and the test
protocol of the config (sampling, resize, crops, normalisation, view averaging).
``tsmnet.create_model(name, pretrained=True)`` builds the model of an entry
(:mod:`tsmnet.models.factory`); this module builds nothing and imports no model.

Sources: ``mmaction/.mim/configs/recognition/tsm/metafile.yml`` in the mmaction2 1.2.0 wheel
(URLs, top-1/top-5) and the configs beside it (architecture, test pipeline); the MobileNetV2
checkpoint is listed in MMAction2's ``configs/recognition/tsm/README.md`` only (the metafile
lists the ResNet-101 Something-Something V2 entry twice, the second copy with MobileNetV2's
metadata but the ResNet-101 name, URL and figures). MobileOne-S4 has two names: its config
and the ``_deploy_`` twin (the same checkpoint, loaded into the reparameterised form).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from types import MappingProxyType
from typing import Any

from .. import video
from ..video import TestProtocol

__all__ = ['DATASETS', 'ENTRIES', 'UnknownModelError', 'WeightsEntry', 'list_weights',
           'weights']

_BASE_URL = 'https://download.openmmlab.com/mmaction/v1.0/recognition/tsm'
METAFILE = 'mmaction2 1.2.0, configs/recognition/tsm/metafile.yml'
README = ('mmaction2 1.2.0, configs/recognition/tsm/README.md '
          '(https://github.com/open-mmlab/mmaction2/blob/v1.2.0/configs/recognition/tsm/README.md)')

#: Dataset key -> (display name, label file in ``tsmnet/weights/labels``, classes).
DATASETS: Mapping[str, tuple[str, str, int]] = MappingProxyType({
    'kinetics400': ('Kinetics-400', 'kinetics400.txt', 400),
    'sthv2': ('Something-Something V2', 'sthv2.txt', 174),
})

_HASH = re.compile(r'-([0-9a-f]{8})\.pth$')


class UnknownModelError(ValueError):
    """No entry has this name; the message suggests close names."""


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple) and any(isinstance(v, (Mapping, tuple)) for v in value):
        return tuple(_thaw(v) for v in value)
    return value


@dataclass(frozen=True)
class WeightsEntry:
    """One released checkpoint and everything needed to use it.

    Attributes:
        name: MMAction2's config name.
        backbone: The backbone class name (``'ResNetTSM'``, ``'MobileNetV2TSM'`` or
            ``'MobileOneTSM'``).
        backbone_kwargs: Its arguments, as in the config (``pretrained`` left out).
        head_kwargs: The :class:`tsmnet.TSMHead` arguments, as in the config.
        url: Where MMAction2 publishes the checkpoint.
        dataset: ``'kinetics400'`` or ``'sthv2'`` (keys of :data:`DATASETS`).
        top1: Published top-1 accuracy (%) under :attr:`protocol`.
        top5: Published top-5 accuracy (%).
        source: Where the figures and the URL are published.
        protocol: The config's test protocol (sampling, resize, crops, mean/std,
            ``average_clips``).
        notes: Anything odd about the published entry.
    """

    name: str
    backbone: str
    backbone_kwargs: Mapping[str, Any]
    head_kwargs: Mapping[str, Any]
    url: str
    dataset: str
    top1: float
    top5: float
    source: str
    protocol: TestProtocol
    notes: str = ''

    def __post_init__(self) -> None:
        object.__setattr__(self, 'backbone_kwargs', _freeze(self.backbone_kwargs))
        object.__setattr__(self, 'head_kwargs', _freeze(self.head_kwargs))

    def __hash__(self) -> int:  # the mappings are not hashable; the name is unique
        return hash(self.name)

    @property
    def filename(self) -> str:
        return self.url.rsplit('/', 1)[-1]

    @property
    def sha256(self) -> str:
        """The first 8 hex digits of the file's sha256, from its name (``..._20220831-64d69186
        .pth``): what ``torch.hub``'s ``check_hash`` verifies."""
        return _HASH.search(self.filename).group(1)

    @property
    def date(self) -> str:
        return self.filename.rsplit('_', 1)[-1].split('-')[0]

    @property
    def num_classes(self) -> int:
        return self.head_kwargs['num_classes']

    @property
    def num_segments(self) -> int:
        """Frames per clip ``T`` the model was trained with."""
        return self.head_kwargs['num_segments']

    @property
    def input_size(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one test-time frame (a crop of :attr:`protocol`)."""
        return (3, self.protocol.crop_size, self.protocol.crop_size)

    @property
    def mean(self) -> tuple[float, float, float]:
        """RGB mean on the 0-255 scale (MMAction2's ``ActionDataPreprocessor``)."""
        return self.protocol.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.protocol.std

    @property
    def dataset_name(self) -> str:
        return DATASETS[self.dataset][0]

    @cached_property
    def labels(self) -> tuple[str, ...]:
        """The class names, in the index order of the model's scores."""
        file = DATASETS[self.dataset][1]
        text = resources.files('tsmnet.weights').joinpath('labels', file).read_text('utf-8')
        return tuple(line.strip() for line in text.splitlines() if line.strip())

    @property
    def architecture(self) -> dict[str, Any]:
        """The model as MMAction2 config dicts: ``{'backbone': {'type': ..., ...},
        'cls_head': {'type': 'TSMHead', ...}}`` (fresh, mutable copies)."""
        return {'backbone': {'type': self.backbone, **_thaw(self.backbone_kwargs)},
                'cls_head': {'type': 'TSMHead', **_thaw(self.head_kwargs)}}

    @property
    def meta(self) -> dict[str, Any]:
        """torchvision-style metadata: categories, metrics, protocol, source."""
        return {'categories': list(self.labels), 'num_classes': self.num_classes,
                'dataset': self.dataset_name,
                'metrics': {'top1': self.top1, 'top5': self.top5},
                'num_segments': self.num_segments, 'input_size': self.input_size,
                'mean': self.mean, 'std': self.std, 'protocol': self.protocol,
                'source': self.source, 'url': self.url, 'sha256': self.sha256,
                'notes': self.notes}

    def transforms(self) -> Any:
        """The test-time pipeline of :attr:`protocol`: decoded frames ``[F, H, W, C]`` uint8
        -> the model's input ``[V, T, 3, crop, crop]`` (``tsmnet.video.VideoTransform``)."""
        return video.VideoTransform(self.protocol)


def _resnet(depth: int, num_segments: int = 8, **extra: Any) -> dict[str, Any]:
    return dict(depth=depth, norm_eval=False, shift_div=8, num_segments=num_segments, **extra)


def _head(num_classes: int, in_channels: int, num_segments: int = 8) -> dict[str, Any]:
    return dict(num_classes=num_classes, in_channels=in_channels, num_segments=num_segments,
                spatial_type='avg', consensus=dict(type='AvgConsensus', dim=1),
                dropout_ratio=0.5, init_std=0.001, is_shift=True, average_clips='prob')


def _non_local(mode: str) -> dict[str, Any]:
    return dict(non_local=((0, 0, 0), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 0, 0)),
                non_local_cfg=dict(sub_sample=True, use_scale=False,
                                   norm_cfg=dict(type='BN3d', requires_grad=True), mode=mode))


def _url(name: str, stamp: str) -> str:
    return f'{_BASE_URL}/{name}/{name}_{stamp}.pth'


# test protocols of the configs' test pipelines
_K400_TEN = TestProtocol(num_clips=8, crop='ten', crop_size=224)
_K400_TEN_16 = TestProtocol(num_clips=16, crop='ten', crop_size=224)
_K400_DENSE = TestProtocol(num_clips=8, dense=True, num_test_clips=10, crop='ten',
                           crop_size=224)
_THREE_256 = TestProtocol(num_clips=8, crop='three', crop_size=256)
_SSV2_8 = TestProtocol(num_clips=8, twice_sample=True, crop='three', crop_size=256)
_SSV2_16 = TestProtocol(num_clips=16, twice_sample=True, crop='three', crop_size=256)

_R50_K400 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb'
_R50_K400_100E = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-100e_kinetics400-rgb'
_R50_K400_16 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_kinetics400-rgb'
_R50_K400_DENSE = 'tsm_imagenet-pretrained-r50_8xb16-dense-1x1x8-50e_kinetics400-rgb'
_NL = 'tsm_imagenet-pretrained-r50-nl-{}_8xb16-1x1x8-50e_kinetics400-rgb'
_MBV2_K400 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'
_R50_SSV2 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb'
_R50_SSV2_16 = 'tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb'
_R101_SSV2 = 'tsm_imagenet-pretrained-r101_8xb16-1x1x8-50e_sthv2-rgb'
_MOBILEONE = 'tsm_imagenet-pretrained-mobileone-s4{}_8xb16-1x1x16-50e_kinetics400-rgb'
_MOBILEONE_URL = _url(_MOBILEONE.format(''), '20230825-a7f8876b')
# MMAction2's config sets num_segments=16 on the head only: its backbone (the base model file's)
# shifts within groups of 8 frames of each 16-frame clip, and the weights were trained so
_MOBILEONE_SEGMENTS = ('the backbone shifts within each half of the 16-frame clip '
                       '(num_segments=8, as in the config, whose head has 16)')
_THREE_256_16 = TestProtocol(num_clips=16, crop='three', crop_size=256)

_ENTRIES = [
    WeightsEntry(_R50_K400, 'ResNetTSM', _resnet(50), _head(400, 2048),
                 _url(_R50_K400, '20220831-64d69186'), 'kinetics400', 73.18, 90.56, METAFILE,
                 _K400_TEN),
    WeightsEntry(_R50_K400_100E, 'ResNetTSM', _resnet(50), _head(400, 2048),
                 _url(_R50_K400_100E, '20220831-a6db1e5d'), 'kinetics400', 73.22, 90.22,
                 METAFILE, _K400_TEN),
    WeightsEntry(_R50_K400_16, 'ResNetTSM', _resnet(50, 16), _head(400, 2048, 16),
                 _url(_R50_K400_16, '20220831-042b1748'), 'kinetics400', 75.12, 91.55,
                 METAFILE, _K400_TEN_16),
    WeightsEntry(_R50_K400_DENSE, 'ResNetTSM', _resnet(50), _head(400, 2048),
                 _url(_R50_K400_DENSE, '20220831-f55d3c2b'), 'kinetics400', 73.38, 90.78,
                 METAFILE, _K400_DENSE),
    WeightsEntry(_NL.format('embedded-gaussian'), 'ResNetTSM',
                 _resnet(50, **_non_local('embedded_gaussian')), _head(400, 2048),
                 _url(_NL.format('embedded-gaussian'), '20220831-35eddb57'), 'kinetics400',
                 74.34, 91.23, METAFILE, _K400_TEN),
    WeightsEntry(_NL.format('dot-product'), 'ResNetTSM',
                 _resnet(50, **_non_local('dot_product')), _head(400, 2048),
                 _url(_NL.format('dot-product'), '20220831-108bfde5'), 'kinetics400',
                 74.49, 91.15, METAFILE, _K400_TEN),
    WeightsEntry(_NL.format('gaussian'), 'ResNetTSM',
                 _resnet(50, **_non_local('gaussian')), _head(400, 2048),
                 _url(_NL.format('gaussian'), '20220831-7e54dacf'), 'kinetics400',
                 73.66, 90.99, METAFILE, _K400_TEN),
    WeightsEntry(_MBV2_K400, 'MobileNetV2TSM',
                 dict(shift_div=8, num_segments=8, is_shift=True), _head(400, 1280),
                 _url(_MBV2_K400, '20230414-401127fd'), 'kinetics400', 68.71, 88.32, README,
                 _THREE_256,
                 notes='only in the README: metafile.yml has a MobileNetV2 entry, but with the '
                       'ResNet-101 Something-Something V2 name, URL and figures'),
    WeightsEntry(_R50_SSV2, 'ResNetTSM', _resnet(50), _head(174, 2048),
                 _url(_R50_SSV2, '20230317-be0fc26e'), 'sthv2', 62.72, 87.70, METAFILE,
                 _SSV2_8),
    WeightsEntry(_R50_SSV2_16, 'ResNetTSM', _resnet(50, 16), _head(174, 2048, 16),
                 _url(_R50_SSV2_16, '20230317-ec6696ad'), 'sthv2', 64.16, 88.61, METAFILE,
                 _SSV2_16),
    WeightsEntry(_R101_SSV2, 'ResNetTSM', _resnet(101), _head(174, 2048),
                 _url(_R101_SSV2, '20230320-efcc0d1b'), 'sthv2', 63.70, 88.28, METAFILE,
                 _SSV2_8, notes='listed twice in metafile.yml (the second copy with '
                                "MobileNetV2's metadata)"),
    WeightsEntry(_MOBILEONE.format(''), 'MobileOneTSM',
                 dict(arch='s4', shift_div=8, num_segments=8, is_shift=True),
                 _head(400, 2048, 16), _MOBILEONE_URL, 'kinetics400', 74.38, 91.71, METAFILE,
                 _THREE_256_16, notes=_MOBILEONE_SEGMENTS),
    WeightsEntry(_MOBILEONE.format('_deploy'), 'MobileOneTSM',
                 dict(arch='s4', shift_div=8, num_segments=8, is_shift=True, deploy=True),
                 _head(400, 2048, 16), _MOBILEONE_URL, 'kinetics400', 74.38, 91.71, METAFILE,
                 _THREE_256_16,
                 notes='the deploy twin (deploy=True): the same checkpoint, each block folded '
                       'into one conv on load (tsmnet.models.reparam); ' + _MOBILEONE_SEGMENTS),
]

#: Name -> entry, in MMAction2's README order.
ENTRIES: Mapping[str, WeightsEntry] = MappingProxyType({e.name: e for e in _ENTRIES})


def list_weights(filter: str = '') -> list[str]:
    """Entry names, optionally only those matching the shell-style pattern ``filter``
    (``'*r50*'``; a plain word matches names containing it), sorted."""
    if filter and not any(c in filter for c in '*?['):
        filter = f'*{filter}*'
    return sorted(n for n in ENTRIES if not filter or fnmatch.fnmatchcase(n, filter))


_COMMON_WORDS = {'tsm', 'imagenet', 'pretrained', 'rgb', '8xb16'}


def _words(name: str) -> set[str]:
    return set(re.split(r'[-_.\s]+', name.lower())) - _COMMON_WORDS - {''}


def _sharing_words(name: str, limit: int = 3) -> list[str]:
    """Entry names sharing the most words (``r50``, ``kinetics400``, ``1x1x8``...) with
    ``name``."""
    words = _words(name)
    scored = sorted(((len(words & _words(n)), n) for n in ENTRIES), key=lambda s: -s[0])
    return [n for score, n in scored if score and score == scored[0][0]][:limit]


def get_weights(name: str) -> WeightsEntry:
    """The entry of ``name`` (a config name of MMAction2's TSM checkpoints): torchvision's
    ``get_weight`` convention; ``tsmnet.get_weights(name)``.

    Raises:
        UnknownModelError: No entry has this name; the message names close ones.
    """
    if isinstance(name, WeightsEntry):
        return name
    entry = ENTRIES.get(name) if isinstance(name, str) else None
    if entry is not None:
        return entry
    close = difflib.get_close_matches(str(name), list(ENTRIES), n=3, cutoff=0.6) or \
        _sharing_words(str(name))
    hint = f'; did you mean {", ".join(map(repr, close))}?' if close else ''
    raise UnknownModelError(f'unknown model name {name!r}{hint} (tsmnet.list_models() lists '
                            f'the {len(ENTRIES)} names)')


weights = get_weights  # the name the models and commands import it by
