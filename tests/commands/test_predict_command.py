"""``tsmnet predict`` gives the scores of MMAction2's ``init_recognizer`` +
``inference_recognizer`` on the same video, config and checkpoint; over many videos it writes
each result as it comes and a bad file is a row; bad input fails the tsmnet way (one line,
exit 2)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.cli import main
from tsmnet.commands.predict import DEFAULT_MODEL, EXIT_FAILED
from tsmnet.train.model import build_architecture

MBV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'


def _config(name: str):
    import mmaction
    from mmengine.config import Config

    path = Path(mmaction.__file__).parent / '.mim/configs/recognition/tsm' / f'{name}.py'
    return Config.fromfile(str(path))


def _random_checkpoint(model: torch.nn.Module, path: Path, seed: int = 0) -> Path:
    """Random weights that give scores far from uniform: BN statistics and a wide head."""
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith('running_mean'):
            value.copy_(torch.randn(value.shape, generator=gen) * 0.5)
        elif key.endswith('running_var'):
            value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.75)
        elif key == 'cls_head.fc_cls.weight':
            value.copy_(torch.randn(value.shape, generator=gen) * 0.5)
        elif key == 'cls_head.fc_cls.bias':
            value.copy_(torch.randn(value.shape, generator=gen) * 0.5)
    torch.save({'state_dict': state, 'meta': {'note': 'random weights for a parity test'}}, path)
    return path


@pytest.fixture(scope='module')
def video(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('predict')
    return write_video(root / 'clip.mp4', moving_frames(36, 120, 160, seed=3))


@pytest.mark.slow
def test_scores_equal_inference_recognizer(tmp_path, video, mmaction_models, capsys):
    from mmaction.apis import inference_recognizer, init_recognizer

    cfg = _config(MBV2)
    model = init_recognizer(cfg, None, device='cpu')
    ckpt = _random_checkpoint(model, tmp_path / 'random.pth')
    theirs = inference_recognizer(init_recognizer(_config(MBV2), str(ckpt), device='cpu'),
                                  str(video)).pred_score
    assert theirs.shape == (400,) and theirs.max() > 10 / 400  # far from uniform

    out = tmp_path / 'out.json'
    assert main(['predict', str(video), '--model', MBV2, '--weights', str(ckpt), '--top', '400',
                 '--json', str(out), '--threads', '2']) == 0
    result = json.loads(out.read_text())['videos'][0]
    assert result['views'] == 3  # ThreeCrop, one clip
    assert list(result['seconds']) == ['decode', 'transforms', 'model']  # bench_predict's stages
    ours = torch.zeros(400)
    for item in result['top']:
        ours[item['index']] = item['prob']
    torch.testing.assert_close(ours, theirs.float(), rtol=0, atol=1e-4)
    assert [i['index'] for i in result['top'][:5]] == theirs.topk(5).indices.tolist()
    printed = capsys.readouterr().out
    assert f'{video}  (3 views' in printed and '  1. ' in printed


@pytest.mark.slow
def test_fewer_views_and_labels_file(tmp_path, video, mmaction_models, capsys):
    from mmaction.apis import init_recognizer

    model = init_recognizer(_config(MBV2), None, device='cpu')
    ckpt = _random_checkpoint(model, tmp_path / 'random.pth', seed=1)
    labels = tmp_path / 'names.txt'
    labels.write_text(''.join(f'thing {i}\n' for i in range(400)))
    copy = tmp_path / 'copy.mp4'  # a path named twice is scored once: another file
    copy.write_bytes(video.read_bytes())
    assert main(['predict', str(video), str(copy), '--model', MBV2, '--weights', str(ckpt),
                 '--views', '1,1', '--labels', str(labels), '--top', '2']) == 0
    printed = capsys.readouterr().out
    assert printed.count('(1 views') == 2 and 'thing ' in printed


@pytest.mark.parametrize('args,message', [
    (['{empty}'], 'holds no video'),
    (['{empty}/*.mp4'], 'matches no file'),
    (['--list', '{empty}/list.txt'], 'cannot be read'),
    (['{video}', '--workers', '-1'], '--workers must be >= 0'),
    (['{video}', '--views', '1'], '--views must be CLIPS,CROPS'),
    (['{video}', '--views', '1,5'], '--views: CLIPS must be >= 1 and CROPS 1, 3 or 10'),
    (['{video}', '--top', '0'], '--top must be >= 1'),
    (['{video}', '--model', 'tsm_r50_nothing'], '--model'),
    (['{video}', '--model', MBV2, '--weights', 'nowhere.pth'], '--weights: no such file'),
])
def test_bad_input_fails_in_one_line(args, message, tmp_path, video, capsys):
    (tmp_path / 'empty').mkdir()
    args = [a.format(video=video, empty=tmp_path / 'empty') for a in args]
    status = main(['predict', *args])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith('tsmnet predict: error: ') and err.count('\n') == 1, err
    assert message in err


def _tiny_checkpoint(path: Path) -> Path:
    """A ResNet-18-TSM of 3 classes read at 32x32, as ``tsmnet finetune`` described it before
    ``tsmnet.save`` (the zoo entry and its changes)."""
    torch.manual_seed(0)
    model = build_architecture(DEFAULT_MODEL, 3, depth=18)
    torch.save({'state_dict': model.state_dict(),
                'meta': {'classes': ['left', 'right', 'still'], 'model': DEFAULT_MODEL,
                         'tsmnet': {'architecture': {'depth': 18},
                                    'protocol': {'resize_short': 36, 'crop_size': 32}}}},
               path)
    return path


@pytest.fixture(scope='module')
def many(tmp_path_factory) -> Path:
    """Five small videos in a tree, one cut short (corrupt) and one that is text."""
    root = tmp_path_factory.mktemp('many')
    (root / 'sub').mkdir()
    for i in range(5):
        write_video(root / ('sub' if i % 2 else '') / f'v{i}.mp4',
                    moving_frames(10, 36, 44, seed=i))
    good = (root / 'v0.mp4').read_bytes()
    (root / 'sub' / 'corrupt.mp4').write_bytes(good[:len(good) // 3])
    (root / 'notes.mp4').write_text('not a video\n')
    _tiny_checkpoint(root / 'tiny.pth')
    return root


@pytest.mark.slow
def test_many_videos_as_rows_bad_files_included(many, tmp_path, capsys):
    """A folder and a list file; --jsonl to stdout (human lines go to stderr), --csv and
    --json to files; the corrupt and text files are rows with their error; the exit status
    counts them; progress on a non-terminal is a few lines."""
    listed = tmp_path / 'list.txt'
    listed.write_text(f'{many / "v0.mp4"}\n# a comment\n{many / "missing.mp4"}\n')
    status = main(['predict', str(many), '--list', str(listed), '--weights',
                   str(many / 'tiny.pth'), '--views', '1,1', '--top', '2', '--jsonl', '-',
                   '--csv', str(tmp_path / 'out.csv'), '--json', str(tmp_path / 'out.json'),
                   '--workers', '0', '--threads', '1'])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    videos = [Path(r['video']).name for r in rows]
    assert videos == ['notes.mp4', 'corrupt.mp4', 'v1.mp4', 'v3.mp4', 'v0.mp4', 'v2.mp4',
                      'v4.mp4', 'missing.mp4']
    failed = {Path(r['video']).name: r['error'] for r in rows if r['error']}
    assert set(failed) == {'notes.mp4', 'corrupt.mp4', 'missing.mp4'}
    assert status == EXIT_FAILED + 3
    assert all(name in error for name, error in failed.items())
    for r in rows:
        if not r['error']:
            assert r['views'] == 1 and [t['label'] for t in r['top']][0] in \
                ('left', 'right', 'still') and len(r['top']) == 2
    assert 'v4.mp4  (1 views' in err and 'corrupt.mp4  FAILED: ' in err
    progress = [line for line in err.splitlines() if ' videos (' in line]
    assert 1 <= len(progress) <= 5 and progress[-1].startswith('8/8 videos (100%, 3 failed')
    assert '3 of 8 videos could not be read' in err
    doc = json.loads((tmp_path / 'out.json').read_text())
    assert doc['videos'] == rows and doc['failed'] == 3 and doc['protocol']['crop_size'] == 32
    table = list(csv.DictReader((tmp_path / 'out.csv').open()))
    assert [Path(r['video']).name for r in table] == videos
    assert [r['label_1'] for r in table] == [r['top'][0]['label'] if r['top'] else ''
                                             for r in rows]


@pytest.mark.slow
def test_workers_in_a_process_with_json_on_stdout(many):
    """The command as a user runs it: decoding in 2 worker processes, ``--json -`` a JSON
    document on stdout alone, the same scores as decoding in-process."""
    env = dict(os.environ, TSMNET_SHIFT_BACKEND='torch')
    runs = {}
    for workers in ('2', '0'):
        proc = subprocess.run(
            [sys.executable, '-m', 'tsmnet', 'predict', str(many / 'sub'), str(many / 'v0.mp4'),
             '--weights', str(many / 'tiny.pth'), '--views', '1,1', '--json', '-', '--workers',
             workers, '--threads', '1'], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == EXIT_FAILED + 1, proc.stderr[-2000:]
        runs[workers] = json.load(io.StringIO(proc.stdout))
        assert 'corrupt.mp4  FAILED' in proc.stderr
    assert [(v['video'], v['top'], v['error']) for v in runs['2']['videos']] == \
        [(v['video'], v['top'], v['error']) for v in runs['0']['videos']]
    assert len(runs['2']['videos']) == 4 and runs['2']['failed'] == 1
