"""Each transform equals MMAction2's transform of the same frames, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsmnet.video import transforms

pytest.importorskip('mmaction')
from mmaction.datasets.transforms import CenterCrop, Resize, TenCrop, ThreeCrop  # noqa: E402

SIZES = [(240, 320), (256, 341), (37, 53), (100, 75), (480, 640), (31, 17), (512, 680),
         (127, 255), (720, 1280)]


def _frames(h: int, w: int, n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _mm(transform, frames: np.ndarray) -> np.ndarray:
    out = transform.transform(dict(imgs=list(frames), img_shape=frames.shape[1:3],
                                   modality='RGB'))
    return np.stack(out['imgs'])


@pytest.fixture(params=['opencv', 'numpy'])
def resize_path(request, monkeypatch) -> str:
    """Each test of a resize runs twice: with OpenCV, and with the numpy path that stands in
    where OpenCV is not installed."""
    if request.param == 'numpy':
        monkeypatch.setattr(transforms, 'opencv', lambda: None)
    else:
        assert transforms.opencv() is not None  # MMAction2's mmcv brings OpenCV
    return request.param


@pytest.mark.parametrize('h,w', SIZES)
@pytest.mark.parametrize('short', [256, 64, 224])
def test_resize_short_side_equals_mmaction(h, w, short, resize_path):
    frames = _frames(h, w)
    ours = transforms.resize_short_side(frames, short)
    theirs = _mm(Resize(scale=(-1, short)), frames)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize('size', [(224, 224), (100, 61)])
def test_resize_equals_mmcv(size, resize_path):
    """Any output size (the training pipeline's second resize), from a non-contiguous view
    (channels reversed, as a BGR to RGB view gives them)."""
    import mmcv

    frames = _frames(183, 250)[..., ::-1]
    ours = transforms.resize(frames, *size)
    theirs = np.stack([mmcv.imresize(np.ascontiguousarray(f), (size[1], size[0]),
                                     interpolation='bilinear') for f in frames])
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize('h,w', [(256, 341), (256, 256), (341, 256), (257, 300), (300, 257)])
@pytest.mark.parametrize('size', [224, 100, 1])
def test_crops_equal_mmaction(h, w, size):
    frames = _frames(h, w, n=3)
    for ours, theirs in [(transforms.center_crop, CenterCrop(size)),
                         (transforms.ten_crop, TenCrop(size))]:
        got = ours(frames, size)
        np.testing.assert_array_equal(got.reshape(-1, size, size, 3), _mm(theirs, frames))
    short = min(h, w)
    got = transforms.three_crop(frames, short)
    np.testing.assert_array_equal(got.reshape(-1, short, short, 3),
                                  _mm(ThreeCrop(short), frames))


def test_normalize_is_the_data_preprocessors_arithmetic():
    crops = _frames(8, 8, n=4)
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    got = transforms.normalize(crops, mean, std)
    want = (torch.from_numpy(crops).permute(0, 3, 1, 2).double()
            - torch.tensor(mean, dtype=torch.float64).view(3, 1, 1)) \
        / torch.tensor(std, dtype=torch.float64).view(3, 1, 1)
    assert got.dtype == torch.float32 and got.shape == (4, 3, 8, 8)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize('shape,channels', [((2, 5, 6), 1), ((2, 5, 6, 1), 1), ((2, 5, 6, 4), 4)])
def test_grey_and_rgba_frames_become_rgb(shape, channels):
    frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    rgb = transforms.as_rgb(frames)
    assert rgb.shape == (2, 5, 6, 3)
    if channels == 1:
        assert (rgb == frames.reshape(2, 5, 6, 1)).all()
    else:
        np.testing.assert_array_equal(rgb, frames[..., :3])


@pytest.mark.parametrize('frames,match', [
    (np.zeros((2, 5, 6, 3), np.float32), 'frames must be uint8'),
    (np.zeros((2, 5, 6, 2), np.uint8), r'frames must be \[F, H, W\] or \[F, H, W, C\]'),
    (np.zeros((0, 5, 6, 3), np.uint8), 'frames must not be empty'),
])
def test_bad_frames(frames, match):
    with pytest.raises(ValueError, match=match):
        transforms.as_rgb(frames)


def test_crop_larger_than_frames_is_refused():
    with pytest.raises(ValueError, match='TenCrop: crop size 224 does not fit in frames of 200x'):
        transforms.ten_crop(_frames(200, 300), 224)
    with pytest.raises(ValueError, match='ThreeCrop: crop size 100 must equal the short side'):
        transforms.three_crop(_frames(200, 300), 100)
