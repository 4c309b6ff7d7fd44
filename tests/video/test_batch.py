"""``predict_videos``: many videos scored in order, decoded in worker processes or in-process
with the same numbers as ``load_video``; a bad file is a row with its error and the run goes
on; the writers write each row as it comes."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.video import (
    ResultWriter,
    TestProtocol,
    VideoResult,
    find_videos,
    load_video,
    predict_videos,
)

PROTOCOL = TestProtocol(num_clips=4, resize_short=36, crop='center', crop_size=32)
LABELS = ['red', 'green', 'blue']


def scores(views: torch.Tensor) -> torch.Tensor:
    """A stand-in model: each class is a colour channel's mean, softmaxed over channels."""
    assert views.shape[1:] == (4, 3, 32, 32)
    return views.mean(dim=(0, 1, 3, 4)).mul(10).softmax(0)


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('batch')
    for i in range(6):
        sub = root / ('more' if i >= 3 else '')
        sub.mkdir(exist_ok=True)
        frames = moving_frames(10, 36, 48, seed=i)
        frames[..., i % 3] = 250  # one channel saturated: the "colour" of the clip
        write_video(sub / f'clip{i}.mp4', frames)
    good = (root / 'clip0.mp4').read_bytes()
    (root / 'corrupt.mp4').write_bytes(good[:len(good) // 3])  # cut inside the video
    (root / 'text.mp4').write_text('not a video\n')
    return root


def _check(results: list[VideoResult], paths: list[str]) -> None:
    assert [r.video for r in results] == paths
    bad = {r.video.rsplit('/', 1)[-1]: r.error for r in results if not r.ok}
    assert set(bad) == {'corrupt.mp4', 'text.mp4', 'missing.mp4'}
    for name, error in bad.items():
        assert name in error and '\n' not in error
    for r in results:
        if r.ok:
            i = int(r.video[-5])
            assert r.top[0][:2] == (i % 3, LABELS[i % 3]) and r.views == 1
            assert list(r.seconds) == ['decode', 'transforms', 'model']
            want = scores(load_video(r.video, PROTOCOL))
            assert r.top[0][2] == pytest.approx(float(want.max()), abs=1e-6)


def test_in_process_rows_for_bad_files(folder):
    paths = find_videos([folder, folder / 'missing.mp4'])
    results = list(predict_videos(paths, scores, PROTOCOL, LABELS, top=2))
    _check(results, paths)
    assert all(len(r.top) == 2 for r in results if r.ok)


@pytest.mark.slow
def test_worker_processes_give_the_same_rows(folder):
    paths = find_videos([folder, folder / 'missing.mp4'])
    inline = list(predict_videos(paths, scores, PROTOCOL, LABELS))
    # forkserver: a fork of the suite's threaded process is unsafe (tests/dataset does alike)
    workers = list(predict_videos(paths, scores, PROTOCOL, LABELS, workers=2,
                                  multiprocessing_context='forkserver'))
    _check(workers, paths)
    assert [(r.video, r.top, r.error) for r in workers] == \
        [(r.video, r.top, r.error) for r in inline]


@pytest.mark.slow
def test_a_folder_of_hundreds_of_tiny_clips(tmp_path):
    frames = moving_frames(8, 36, 40, seed=0)
    for i in range(300):
        folder = tmp_path / f'class{i % 7}'
        folder.mkdir(exist_ok=True)
        write_video(folder / f'{i:03d}.mp4', frames[i % 3:], codec='mpeg4')
    (tmp_path / 'class3' / 'broken.mp4').write_bytes(b'\x00' * 100)
    paths = find_videos([tmp_path])
    assert len(paths) == 301
    results = list(predict_videos(paths, scores, PROTOCOL, LABELS, workers=2,
                                  multiprocessing_context='forkserver'))
    assert [r.video for r in results] == paths
    assert [r.video for r in results if not r.ok] == [str(tmp_path / 'class3' / 'broken.mp4')]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='top must be >= 1, got 0'):
        next(predict_videos(['x.mp4'], scores, PROTOCOL, LABELS, top=0))
    with pytest.raises(ValueError, match='workers must be >= 0, got -1'):
        next(predict_videos(['x.mp4'], scores, PROTOCOL, LABELS, workers=-1))


def test_writers_write_each_row_as_it_comes(tmp_path, capsys):
    ok = VideoResult('a.mp4', [(2, 'blue', 0.75), (0, 'red', 0.125)], 1,
                     {'decode': 0.5, 'transforms': 0.25, 'model': 1.0})
    bad = VideoResult('b, "odd".mp4', seconds={'decode': 0.1}, error="video 'b': damaged")
    writers = [ResultWriter(kind, tmp_path / f'out.{kind}', {'model': 'm'}, top=2)
               for kind in ('json', 'jsonl', 'csv')]
    for writer in writers:
        writer.write(ok)
    # the first row is on disk before the run ends
    assert json.loads((tmp_path / 'out.jsonl').read_text())['top'][0]['label'] == 'blue'
    assert (tmp_path / 'out.json').read_text().count('a.mp4') == 1
    for writer in writers:
        writer.write(bad)
        writer.close({'failed': 1})
    doc = json.loads((tmp_path / 'out.json').read_text())
    assert doc['model'] == 'm' and doc['failed'] == 1
    assert doc['videos'] == [ok.as_dict(), bad.as_dict()]
    lines = [json.loads(line) for line in (tmp_path / 'out.jsonl').read_text().splitlines()]
    assert lines == [ok.as_dict(), bad.as_dict()]
    rows = list(csv.DictReader((tmp_path / 'out.csv').open()))
    assert rows[0]['label_1'] == 'blue' and rows[0]['index_1'] == '2' and \
        float(rows[0]['prob_2']) == 0.125 and rows[0]['model_s'] == '1.0000'
    assert rows[1]['video'] == 'b, "odd".mp4' and rows[1]['error'] == "video 'b': damaged"
    assert rows[1]['label_1'] == '' and rows[1]['views'] == ''
    # an empty run is still a valid document; '-' is standard output
    empty = ResultWriter('json', '-', {'model': 'm'})
    empty.close({'failed': 0})
    assert json.loads(capsys.readouterr().out) == {'model': 'm', 'videos': [], 'failed': 0}
    with pytest.raises(ValueError, match='--csv: cannot write'):
        ResultWriter('csv', tmp_path / 'no' / 'such' / 'dir.csv')
