"""``VideoDataset`` on files the tests write: its three sources, items that decode only their
sampled frames, per-item seeds that make workers and processes agree, DataLoader workers,
DistributedSampler, and bad videos raised or skipped (counted, warned)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler
from video_files import moving_frames, write_video

from tsmnet.data import DataSourceError, EvalPipeline, TrainPipeline, VideoDataset, pipelines
from tsmnet.video import TestProtocol, VideoError

SMALL = TrainPipeline(num_segments=4, resize_short=40, input_size=32)


@pytest.fixture(scope='module')
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('classes')
    for k, name in enumerate(['b_class', 'a_class']):
        (root / name).mkdir()
        for i in range(3):
            write_video(root / name / f'v{i}.mp4', moving_frames(12 + 5 * i, 48, 64, seed=k))
    return root


def test_sources_agree(folder, tmp_path):
    by_folder = VideoDataset.from_folder(folder, pipeline=SMALL)
    assert by_folder.classes == ['a_class', 'b_class'] and len(by_folder) == 6
    lines = [f'{p.relative_to(folder)} {k}' for p, k in zip(by_folder.videos.paths,
                                                            by_folder.labels)]
    (tmp_path / 'ann.txt').write_text('\n'.join(lines) + '\n\n')
    (tmp_path / 'classes.txt').write_text('a_class\nb_class\n')
    listed = VideoDataset.from_annotations(tmp_path / 'ann.txt', folder,
                                           classes=tmp_path / 'classes.txt', pipeline=SMALL)
    rows = [f'{p.relative_to(folder)},{by_folder.classes[k]}' for p, k in
            zip(by_folder.videos.paths, by_folder.labels)]
    (tmp_path / 'videos.csv').write_text('path,label\n' + '\n'.join(rows) + '\n')
    table = VideoDataset.from_csv(tmp_path / 'videos.csv', folder, pipeline=SMALL)
    for other in (listed, table):
        assert other.videos == by_folder.videos
    assert VideoDataset.from_annotations(tmp_path / 'ann.txt', folder).classes == ['0', '1']


@pytest.mark.parametrize('text,message', [('a.mp4\n', 'expected "path label"'),
                                          ('a.mp4 x\n', 'expected "path label"'),
                                          ('\n', 'lists no videos')])
def test_bad_annotation_lists_are_named(text, message, tmp_path):
    (tmp_path / 'ann.txt').write_text(text)
    with pytest.raises(DataSourceError, match=message):
        VideoDataset.from_annotations(tmp_path / 'ann.txt')


def test_bad_arguments_are_named(folder, tmp_path):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        VideoDataset.from_folder(folder, on_error='ignore')
    with pytest.raises(DataSourceError, match='needs the columns path and label'):
        (tmp_path / 'x.csv').write_text('file,class\na,b\n')
        VideoDataset.from_csv(tmp_path / 'x.csv')
    with pytest.raises(DataSourceError, match='is not a folder'):
        VideoDataset.from_folder(tmp_path / 'nowhere')


def test_an_item_decodes_only_its_sampled_frames(folder, monkeypatch):
    asked = []
    real = pipelines.read_frames

    def recording(path, indices=None, **kwargs):
        asked.append(None if indices is None else sorted(np.asarray(indices).tolist()))
        return real(path, indices, **kwargs)
    monkeypatch.setattr(pipelines, 'read_frames', recording)
    data = VideoDataset.from_folder(folder, pipeline=SMALL, seed=0)
    clip, label = data[5]
    assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.float32
    assert label == data.labels[5] and len(asked) == 1 and asked[0] is not None
    assert 1 <= len(asked[0]) <= 4 and max(asked[0]) < data.num_frames(5) == 22


def test_items_depend_on_seed_epoch_and_index_only(folder):
    a = VideoDataset.from_folder(folder, pipeline=SMALL, seed=3)
    b = VideoDataset.from_folder(folder, pipeline=SMALL, seed=3)
    torch.testing.assert_close(a[2][0], b[2][0], rtol=0, atol=0)
    before = a[2][0]
    a.set_epoch(1)
    assert not torch.equal(a[2][0], before)
    torch.manual_seed(5)
    assert VideoDataset.from_folder(folder).seed == VideoDataset.from_folder(folder).seed


@pytest.mark.slow
def test_persistent_workers_and_distributed_sampler(folder):
    data = VideoDataset.from_folder(folder, pipeline=SMALL, seed=0)

    def epochs(loader, n=2):
        out = []
        for epoch in range(n):
            data.set_epoch(epoch)
            if isinstance(loader.sampler, DistributedSampler):
                loader.sampler.set_epoch(epoch)
            out.append(torch.cat([clips for clips, _ in loader]))
        return out

    inline = epochs(DataLoader(data, batch_size=2))
    # forkserver: a fork of this process, which earlier tests filled with ONNX Runtime's and
    # OpenMP's threads, can crash in the child (fork is unsafe in a threaded process)
    workers = epochs(DataLoader(data, batch_size=2, num_workers=2, persistent_workers=True,
                                multiprocessing_context='forkserver'))
    for x, y in zip(inline, workers):  # the same clips whichever worker reads them
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert inline[0].shape == (6, 4, 3, 32, 32) and not torch.equal(inline[0], inline[1])
    assert (data._num_frames >= 0).all()  # counts probed in workers are shared
    halves = [DistributedSampler(data, num_replicas=2, rank=r, shuffle=True, seed=0)
              for r in range(2)]
    seen = [torch.cat([c for c, _ in DataLoader(data, batch_size=3, sampler=s)])
            for s in halves]
    assert sum(len(s) for s in seen) == 6
    full = torch.stack([data[i][0] for i in range(6)])
    for s, sampler in zip(seen, halves):
        torch.testing.assert_close(s, full[list(sampler)], rtol=0, atol=0)


def test_bad_videos_raise_or_are_skipped_and_counted(folder, tmp_path, caplog):
    (tmp_path / 'ok').mkdir()
    (tmp_path / 'bad').mkdir()
    good = write_video(tmp_path / 'ok' / 'good.mp4', moving_frames(10, 48, 64))
    (tmp_path / 'bad' / 'broken.mp4').write_bytes(b'not a video at all')
    write_video(tmp_path / 'bad' / 'fine.mp4', moving_frames(10, 48, 64, seed=1))
    strict = VideoDataset.from_folder(tmp_path, pipeline=SMALL)
    broken = strict.videos.paths.index(tmp_path / 'bad' / 'broken.mp4')
    with pytest.raises(VideoError, match='broken.mp4'):
        strict[broken]
    lenient = VideoDataset.from_folder(tmp_path, pipeline=SMALL, on_error='skip', seed=0)
    with caplog.at_level(logging.WARNING, logger='tsmnet.data.dataset'):
        clip, label = lenient[broken]
    assert lenient.skipped == [tmp_path / 'bad' / 'broken.mp4']
    assert 'skipping video' in caplog.text and 'broken.mp4' in caplog.text
    # the replacement is the next readable item: index + 1
    assert label == lenient.labels[broken + 1]
    torch.testing.assert_close(clip, lenient.load(broken + 1), rtol=0, atol=0)
    assert good in lenient.videos.paths


def test_eval_pipeline_items(folder):
    data = VideoDataset.from_folder(
        folder, pipeline=EvalPipeline.validation(TestProtocol(resize_short=40, crop_size=32),
                                                 num_segments=4))
    clips = torch.stack([data[i][0] for i in range(2)])
    assert clips.shape == (2, 4, 3, 32, 32)
    data.set_epoch(3)  # deterministic: epochs do not change it
    torch.testing.assert_close(data[0][0], clips[0], rtol=0, atol=0)
