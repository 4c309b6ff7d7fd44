"""MMAction2's test-time transforms as small pure functions on uint8 RGB frames.

Frames are numpy arrays ``[F, H, W, 3]`` (uint8, RGB) until :func:`normalize`, which gives
float32 tensors. Each function does what the MMAction2 1.2.0 transform of the same name does
to the same frames, bit for bit: :func:`resize` is OpenCV's ``INTER_LINEAR`` on uint8 (what
``mmcv.imresize(..., interpolation='bilinear')`` calls) where OpenCV is installed, and
otherwise :func:`resize_numpy`, which reproduces it, 11-bit fixed-point weights and rounding
included.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch

_COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS: weights are multiples of 1/2048
_ONE = 1 << _COEF_BITS


def as_rgb(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    """Frames as ``[F, H, W, 3]`` uint8 RGB.

    Grey frames (``[F, H, W]`` or ``[F, H, W, 1]``) are repeated over three channels, as a
    decoder converting grey video to RGB does; RGBA frames (``[F, H, W, 4]``) lose their alpha.

    Args:
        frames: ``[F, H, W]`` or ``[F, H, W, C]`` with C in 1, 3, 4, dtype uint8.

    Returns:
        ``[F, H, W, 3]`` uint8 (a view of ``frames`` when they are RGB already).
    """
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f'frames must be uint8 (0-255), got dtype {frames.dtype}')
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        raise ValueError('frames must be [F, H, W] or [F, H, W, C] with C in (1, 3, 4), got '
                         f'shape {list(frames.shape)}')
    if min(frames.shape[:3]) == 0:
        raise ValueError(f'frames must not be empty, got shape {list(frames.shape)}')
    if frames.shape[-1] == 1:
        return np.repeat(frames, 3, axis=-1)
    return frames[..., :3]


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """``(new_height, new_width)`` of ``Resize(scale=(-1, short))`` (mmcv's ``rescale_size``)."""
    if short < 1:
        raise ValueError(f'the short side must be >= 1, got {short}')
    scale = min(np.inf / max(height, width), short / min(height, width))
    return int(height * float(scale) + 0.5), int(width * float(scale) + 0.5)


def _linear_taps(src: int, dst: int, clamp: bool) -> tuple[np.ndarray, ...]:
    """Source indices and fixed-point weights of OpenCV's bilinear resize along one axis."""
    scale = 1.0 / (dst / src)
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(pos).astype(np.int64)
    frac = (pos - first.astype(np.float32)).astype(np.float32)
    if clamp:  # OpenCV clamps columns (and their weights) at the borders ...
        low, high = first < 0, first >= src - 1
        frac[low | high] = 0
        first[low] = 0
        first[high] = src - 1
    w1 = np.rint(frac * np.float32(_ONE)).astype(np.int32)
    w0 = np.rint((np.float32(1) - frac) * np.float32(_ONE)).astype(np.int32)
    # ... but only the row indices, keeping their weights
    return np.clip(first, 0, src - 1), np.clip(first + 1, 0, src - 1), w0, w1


@functools.cache
def opencv() -> ModuleType | None:
    """OpenCV, an optional speed-up (its resize is about 15x numpy's, to the same bits), or
    None where it is not installed. Imported on first use: ``import tsmnet.video`` stays
    light for spawned DataLoader workers."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - exercised where OpenCV is not installed
        return None
    return cv2


def resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of uint8 frames: ``cv2.resize(..., INTER_LINEAR)`` frame by frame, or
    :func:`resize_numpy` (the same bits) where OpenCV is not installed.

    Args:
        frames: ``[F, H, W, C]`` uint8.
        height: output height.
        width: output width.

    Returns:
        ``[F, height, width, C]`` uint8.
    """
    cv2 = opencv()
    if cv2 is None:
        return resize_numpy(frames, height, width)
    if height < 1 or width < 1:
        raise ValueError(f'the resized size must be positive, got {height}x{width}')
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((frames.shape[0], height, width, frames.shape[3]), np.uint8)
    for i, frame in enumerate(frames):  # contiguous: OpenCV takes no negative strides
        out[i] = cv2.resize(np.ascontiguousarray(frame), (width, height),
                            interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)
    return out


def resize_numpy(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of uint8 frames in numpy, equal to ``cv2.resize(..., INTER_LINEAR)``.

    Args:
        frames: ``[F, H, W, C]`` uint8.
        height: output height.
        width: output width.

    Returns:
        ``[F, height, width, C]`` uint8.
    """
    if height < 1 or width < 1:
        raise ValueError(f'the resized size must be positive, got {height}x{width}')
    _, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return frames
    x0, x1, a0, a1 = _linear_taps(w, width, clamp=True)
    y0, y1, b0, b1 = _linear_taps(h, height, clamp=False)
    src = frames.astype(np.int32)
    # horizontal pass, exact in int32: sums of pixel x weight (at most 255 * 2048)
    rows = src[:, :, x0] * a0[:, None] + src[:, :, x1] * a1[:, None]
    # vertical pass as OpenCV's SIMD kernel rounds it: >> 4, high half of the product, >> 2
    top = ((rows[:, y0] >> 4) * b0[:, None, None]) >> 16
    bottom = ((rows[:, y1] >> 4) * b1[:, None, None]) >> 16
    return np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)


def resize_short_side(frames: np.ndarray, short: int) -> np.ndarray:
    """``Resize(scale=(-1, short))``: the short side becomes ``short``, aspect kept.

    Args:
        frames: ``[F, H, W, C]`` uint8.
        short: the new short side.

    Returns:
        ``[F, H', W', C]`` uint8 with ``min(H', W') == short``.
    """
    new_h, new_w = short_side_size(frames.shape[1], frames.shape[2], short)
    return resize(frames, new_h, new_w)


def _check_crop(frames: np.ndarray, size: int, name: str) -> tuple[int, int]:
    _, h, w, _ = frames.shape
    if size < 1 or size > h or size > w:
        raise ValueError(f'{name}: crop size {size} does not fit in frames of {h}x{w} '
                         '(resize them first)')
    return h, w


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """``CenterCrop(crop_size=size)``: one square crop, offsets rounded down.

    Args:
        frames: ``[F, H, W, C]``.
        size: the crop's side.

    Returns:
        ``[1, F, size, size, C]`` (one crop).
    """
    h, w = _check_crop(frames, size, 'CenterCrop')
    top, left = (h - size) // 2, (w - size) // 2
    return frames[None, :, top:top + size, left:left + size]


def three_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """``ThreeCrop(crop_size=size)``: three squares along the long side (start, end, middle).

    The crop must span the short side (``Resize(-1, 256)`` then ``ThreeCrop(256)``), as
    MMAction2 requires.

    Args:
        frames: ``[F, H, W, C]``.
        size: the crop's side, equal to ``min(H, W)``.

    Returns:
        ``[3, F, size, size, C]``.
    """
    h, w = _check_crop(frames, size, 'ThreeCrop')
    if size == h:
        step = (w - size) // 2
        offsets = [(0, 0), (0, 2 * step), (0, step)]
    elif size == w:
        step = (h - size) // 2
        offsets = [(0, 0), (2 * step, 0), (step, 0)]
    else:
        raise ValueError(f'ThreeCrop: crop size {size} must equal the short side of frames '
                         f'of {h}x{w}')
    return np.stack([frames[:, t:t + size, x:x + size] for t, x in offsets])


def ten_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """``TenCrop(crop_size=size)``: four corners and the centre, each followed by its mirror.

    Offsets are multiples of ``(W - size) // 4`` and ``(H - size) // 4``, as in MMAction2
    (so with odd margins the "right" corner stops short of the edge).

    Args:
        frames: ``[F, H, W, C]``.
        size: the crop's side.

    Returns:
        ``[10, F, size, size, C]``: upper left, its mirror, upper right, mirror, lower left,
        mirror, lower right, mirror, centre, mirror.
    """
    h, w = _check_crop(frames, size, 'TenCrop')
    ws, hs = (w - size) // 4, (h - size) // 4
    crops = []
    for x, t in [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]:
        crop = frames[:, t:t + size, x:x + size]
        crops += [crop, crop[:, :, ::-1]]
    return np.stack(crops)


def crop(frames: np.ndarray, kind: str, size: int) -> np.ndarray:
    """Apply the crop named ``kind`` (``'center'``, ``'three'`` or ``'ten'``).

    Returns:
        ``[crops, F, size, size, C]``.
    """
    crops = {'center': center_crop, 'three': three_crop, 'ten': ten_crop}
    if kind not in crops:
        raise ValueError(f"crop must be one of 'center', 'three', 'ten', got {kind!r}")
    return crops[kind](frames, size)


def normalize(crops: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per RGB channel on the 0-255 scale, channels first.

    The same float32 arithmetic as MMAction2's ``ActionDataPreprocessor``.

    Args:
        crops: ``[..., H, W, 3]`` uint8.
        mean: three channel means.
        std: three channel standard deviations.

    Returns:
        ``[..., 3, H, W]`` float32.
    """
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f'mean and std must have 3 values (RGB), got {mean!r} and {std!r}')
    if min(std) <= 0:
        raise ValueError(f'std must be positive, got {std!r}')
    x = torch.from_numpy(np.ascontiguousarray(crops)).movedim(-1, -3).float()
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


def to_views(crops: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Cut each crop's frames into views of ``num_segments`` frames (``FormatShape('NCHW')``).

    Args:
        crops: ``[crops, F, 3, H, W]``, F a multiple of ``num_segments``.
        num_segments: frames per view (the model's T).

    Returns:
        ``[crops * F // num_segments, num_segments, 3, H, W]``, crop-major.
    """
    n, f = crops.shape[:2]
    if f % num_segments:
        raise ValueError(f'{f} frames per crop are not a multiple of num_segments={num_segments}')
    return crops.reshape(n * (f // num_segments), num_segments, *crops.shape[2:])
