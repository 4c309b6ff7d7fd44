"""Where a dataset's videos are listed: a class-folder tree, an MMAction2 annotation list, a CSV.

Each reader gives a :class:`VideoList` (paths, integer labels, class names); nothing is opened
or decoded here.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = frozenset({'.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v', '.mpg', '.mpeg',
                            '.wmv', '.flv', '.ogv', '.3gp', '.ts', '.gif'})


class DataSourceError(ValueError):
    """A data source that cannot be listed: missing, empty, or a malformed line."""


@dataclass(frozen=True)
class VideoList:
    """Videos and their labels.

    Args:
        paths: the video files.
        labels: their class indices, in ``range(len(classes))``.
        classes: class names, index ``k`` naming label ``k``.
    """

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise DataSourceError(f'{len(self.paths)} paths but {len(self.labels)} labels')
        bad = [k for k in self.labels if not 0 <= k < len(self.classes)]
        if bad:
            raise DataSourceError(f'label {bad[0]} is not in [0, {len(self.classes)}) '
                                  f'({len(self.classes)} classes)')

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int]) -> VideoList:
        """The videos ``indices`` (same classes)."""
        return VideoList(tuple(self.paths[i] for i in indices),
                         tuple(self.labels[i] for i in indices), self.classes)

    def split(self, fraction: float, seed: int = 0) -> tuple[VideoList, VideoList]:
        """A stratified (train, held-out) split: ``round(fraction * n)`` of each class held out,
        at least one where the class has two videos or more.

        Args:
            fraction: the share of each class held out, in [0, 1).
            seed: the shuffle's seed.
        """
        if not 0 <= fraction < 1:
            raise DataSourceError(f'fraction must be in [0, 1), got {fraction}')
        rng = np.random.default_rng(seed)
        labels = np.asarray(self.labels, dtype=np.int64)
        train: list[int] = []
        held: list[int] = []
        for k in range(len(self.classes)):
            members = rng.permutation(np.flatnonzero(labels == k)).tolist()
            n = round(fraction * len(members))
            if fraction > 0 and len(members) > 1:
                n = min(max(n, 1), len(members) - 1)
            held += members[:n]
            train += members[n:]
        return self.subset(sorted(train)), self.subset(sorted(held))


def read_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a text file, one per line (blank lines ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise DataSourceError(f'classes file {str(path)!r} cannot be read ({err})') from None
    return tuple(line.strip() for line in lines if line.strip())


def from_folder(root: str | os.PathLike,
                suffixes: frozenset[str] = VIDEO_SUFFIXES) -> VideoList:
    """One sub-folder per class (torchvision's ``ImageFolder`` layout): ``root/CLASS/**/VIDEO``.

    Classes are the sorted sub-folder names (hidden ones skipped); each must hold a video
    (any file whose suffix is in ``suffixes``, searched recursively).

    Raises:
        DataSourceError: ``root`` is not a folder, has fewer than 2 classes, or a class
            folder holds no videos.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataSourceError(f'video folder is not a folder: {root}')
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.'))
    classes: list[str] = []
    paths: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        videos = sorted(p for p in folder.rglob('*')
                        if p.is_file() and p.suffix.lower() in suffixes)
        if not videos:
            raise DataSourceError(f'class folder {folder} holds no videos '
                                  f'({", ".join(sorted(suffixes))})')
        paths += videos
        labels += [len(classes)] * len(videos)
        classes.append(folder.name)
    if len(classes) < 2:
        raise DataSourceError(f'video folder {root} must hold at least 2 class sub-folders of '
                              f'videos, found {len(classes)}')
    return VideoList(tuple(paths), tuple(labels), tuple(classes))


def _classes_for(labels: Sequence[int], classes: Sequence[str] | str | os.PathLike | None
                 ) -> tuple[str, ...]:
    if classes is None:
        return tuple(str(k) for k in range(max(labels) + 1))
    if isinstance(classes, (str, os.PathLike)):
        return read_classes(classes)
    return tuple(classes)


def from_annotations(ann_file: str | os.PathLike, data_prefix: str | os.PathLike = '',
                     classes: Sequence[str] | str | os.PathLike | None = None) -> VideoList:
    """MMAction2's ``VideoDataset`` annotation list: ``path label`` per line.

    Args:
        ann_file: the list; a path is relative to ``data_prefix`` (MMAction2's
            ``data_prefix=dict(video=...)``); the label is the last field, so paths may hold
            spaces; blank lines are skipped.
        data_prefix: the folder the paths are relative to.
        classes: class names (a sequence, or a file of one name per line, e.g. MMAction2's
            ``label_map_k400.txt``); default ``'0'``, ``'1'``... up to the largest label.

    Raises:
        DataSourceError: a missing file, an empty list, or a line without an integer label.
    """
    try:
        lines = Path(ann_file).read_text().splitlines()
    except OSError as err:
        raise DataSourceError(f'annotation file {str(ann_file)!r} cannot be read '
                              f'({err})') from None
    paths: list[Path] = []
    labels: list[int] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        path, _, label = line.strip().rpartition(' ')
        try:
            labels.append(int(label))
        except ValueError:
            path = ''
        if not path:
            raise DataSourceError(f'{ann_file}:{number}: expected "path label" (an integer '
                                  f'label), got {line!r}')
        paths.append(Path(data_prefix) / path)
    if not paths:
        raise DataSourceError(f'annotation file {str(ann_file)!r} lists no videos')
    return VideoList(tuple(paths), tuple(labels), _classes_for(labels, classes))


def from_csv(csv_file: str | os.PathLike, data_prefix: str | os.PathLike = '',
             classes: Sequence[str] | str | os.PathLike | None = None) -> VideoList:
    """A CSV with a header naming a ``path`` column and a ``label`` column.

    A label is an integer index, or a class name: with names, the classes are the sorted
    distinct names unless ``classes`` gives them.

    Args:
        csv_file: the table.
        data_prefix: the folder the paths are relative to.
        classes: class names (a sequence or a file of one name per line).

    Raises:
        DataSourceError: a missing file or column, an empty table, or an unknown class name.
    """
    try:
        with open(csv_file, newline='') as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise DataSourceError(f'CSV file {str(csv_file)!r} cannot be read ({err})') from None
    if not rows:
        raise DataSourceError(f'CSV file {str(csv_file)!r} lists no videos')
    missing = {'path', 'label'} - set(rows[0])
    if missing:
        raise DataSourceError(f'CSV file {str(csv_file)!r} needs the columns path and label, '
                              f'has {sorted(rows[0])}')
    paths = tuple(Path(data_prefix) / row['path'] for row in rows)
    raw = [row['label'].strip() for row in rows]
    if all(r.lstrip('-').isdigit() for r in raw):
        labels = [int(r) for r in raw]
        return VideoList(paths, tuple(labels), _classes_for(labels, classes))
    names = _classes_for([0], classes) if classes is not None else tuple(sorted(set(raw)))
    index = {name: k for k, name in enumerate(names)}
    unknown = sorted(set(raw) - index.keys())
    if unknown:
        raise DataSourceError(f'CSV file {str(csv_file)!r}: label {unknown[0]!r} is not a '
                              f'class (classes: {", ".join(names)})')
    return VideoList(paths, tuple(index[r] for r in raw), names)
