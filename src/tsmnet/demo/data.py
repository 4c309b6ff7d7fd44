"""A synthetic video task that only temporal reasoning can solve.

Each clip shows one large, high-contrast disc or square that glides across a noisy
background. Class 0 clips move rightwards (up to 45 degrees off the horizontal), class 1
clips are class 0 clips played backwards, so they move leftwards. A clip and its reverse
hold exactly the same frames, and the label is drawn independently of the frames, so the
frames of the two classes come from the same distribution: any model that ignores frame
order (TSN's average of per-frame scores, for one) is at chance, 50 %. A model that compares
neighbouring frames, such as TSM, can read the direction of motion.

Everything is generated on the fly from a seed; nothing is downloaded.
"""

from __future__ import annotations

import math

import torch

CLASSES: tuple[str, ...] = ('moves right', 'moves left')


class MotionDirection:
    """Clips of a moving object whose label is the direction of motion.

    Args:
        size: Height and width of the frames in pixels (at least 16). Defaults to 32.
        num_frames: Frames per clip ``T`` (at least 2). Defaults to 8.
        seed: Seed of the generator; the same seed gives the same clips. Defaults to 0.
        wrap: The frame is a torus: the object is placed anywhere and leaves one edge to come
            back at the other, so a single frame says nothing of the direction (without it
            the path is centred, and the first frame alone shows on which side the object
            starts, which a causal model reads). Defaults to False.

    Example:
        >>> data = MotionDirection(size=32, num_frames=8, seed=0)
        >>> clips, labels = data.sample(4)   # [4, 8, 3, 32, 32] in [0, 1], [4]
    """

    num_classes: int = len(CLASSES)
    classes: tuple[str, ...] = CLASSES

    def __init__(self, size: int = 32, num_frames: int = 8, seed: int = 0,
                 wrap: bool = False) -> None:
        if not isinstance(size, int) or size < 16:
            raise ValueError(f'size must be an int >= 16, got {size!r}')
        if not isinstance(num_frames, int) or num_frames < 2:
            raise ValueError(f'num_frames must be an int >= 2 (motion needs two frames), '
                             f'got {num_frames!r}')
        self.size = size
        self.num_frames = num_frames
        self.seed = seed
        self.wrap = wrap
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator) * (high - low) + low

    def render(self, n: int) -> torch.Tensor:
        """Clips of class 0: an object moving rightwards.

        Args:
            n: Number of clips.

        Returns:
            Frames ``[n, T, 3, size, size]``, float32 in ``[0, 1]``.
        """
        s, t = self.size, self.num_frames
        # Object: radius 15-22 % of the frame, a disc or a square, a bright colour on a dark
        # background or a dark colour on a bright one (high contrast either way).
        radius = self._uniform(n, 0.15 * s, 0.22 * s)
        is_square = torch.rand(n, generator=self.generator) < 0.5
        # Motion: 1/16 to 1/10 of the frame per step, up to 45 degrees off the horizontal,
        # the path centred near the middle of the frame.
        speed = self._uniform(n, s / 16, s / 10)
        angle = self._uniform(n, -math.pi / 4, math.pi / 4)
        vx, vy = speed * torch.cos(angle), speed * torch.sin(angle)
        mid_x, mid_y = self._uniform(n, 0.4 * s, 0.6 * s), self._uniform(n, 0.3 * s, 0.7 * s)
        steps = torch.arange(t, dtype=torch.float32) - (t - 1) / 2            # [T]
        cx = mid_x[:, None] + vx[:, None] * steps                            # [n, T]
        cy = mid_y[:, None] + vy[:, None] * steps
        coords = torch.arange(s, dtype=torch.float32) + 0.5
        dx = coords[None, None, None, :] - cx[:, :, None, None]               # [n, T, 1, s]
        dy = coords[None, None, :, None] - cy[:, :, None, None]               # [n, T, s, 1]
        if self.wrap:  # distances on the torus, from a centre anywhere in the frame
            shift_x, shift_y = self._uniform(n, 0, s), self._uniform(n, 0, s)
            dx = torch.remainder(dx - shift_x[:, None, None, None] + s / 2, s) - s / 2
            dy = torch.remainder(dy - shift_y[:, None, None, None] + s / 2, s) - s / 2
        r = radius[:, None, None, None]
        disc = dx**2 + dy**2 <= r**2
        square = (dx.abs() <= 0.85 * r) & (dy.abs() <= 0.85 * r)
        mask = torch.where(is_square[:, None, None, None], square, disc)      # [n, T, s, s]

        bright = torch.rand(n, generator=self.generator) < 0.5
        fg = torch.rand(n, 3, generator=self.generator) * 0.4 + 0.6            # bright colour
        bg = torch.rand(n, 3, generator=self.generator) * 0.25                 # dark colour
        fg, bg = torch.where(bright[:, None], fg, bg), torch.where(bright[:, None], bg, fg)
        noise = torch.randn(n, t, 3, s, s, generator=self.generator) * 0.05
        clips = torch.where(mask[:, :, None], fg[:, None, :, None, None],
                            bg[:, None, :, None, None]) + noise
        return clips.clamp_(0, 1)

    def sample(self, n: int, labels: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of clips and their labels.

        Args:
            n: Number of clips.
            labels: Labels ``[n]`` to use (0 or 1) instead of random ones. The clips drawn do
                not depend on the labels: with the same generator state, the clip of label 1
                is the clip of label 0 played backwards.

        Returns:
            ``(clips, labels)``: clips ``[n, T, 3, size, size]`` in ``[0, 1]``, labels ``[n]``
            (int64).
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f'n must be a positive int, got {n!r}')
        clips = self.render(n)
        if labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=self.generator)
        else:
            labels = torch.as_tensor(labels, dtype=torch.int64)
            if labels.shape != (n,) or not ((labels == 0) | (labels == 1)).all():
                raise ValueError(f'labels must be {n} values in {{0, 1}}, got {labels!r}')
        backwards = labels.bool()[:, None, None, None, None]
        return torch.where(backwards, clips.flip(1), clips), labels

    def sample_pairs(self, pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each clip twice, forwards (label 0) and backwards (label 1).

        An order-invariant model gives both clips of a pair the same scores, so it is right on
        exactly one of them: its accuracy on this set is 50 %, not about 50 %.

        Args:
            pairs: Number of pairs.

        Returns:
            ``(clips, labels)``: clips ``[2 * pairs, T, 3, size, size]`` (clip ``pairs + i`` is
            clip ``i`` reversed), labels ``[2 * pairs]`` (``pairs`` zeros, then ``pairs`` ones).
        """
        if not isinstance(pairs, int) or pairs < 1:
            raise ValueError(f'pairs must be a positive int, got {pairs!r}')
        clips = self.render(pairs)
        labels = torch.arange(2).repeat_interleave(pairs)
        return torch.cat([clips, clips.flip(1)]), labels
