"""``tsmnet predict`` gives the scores of MMAction2's ``init_recognizer`` +
``inference_recognizer`` on the same video, config and checkpoint; bad input fails the tsmnet
way (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from video_files import moving_frames, write_video

from tsmnet.cli import main

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
    assert main(['predict', str(video), str(video), '--model', MBV2, '--weights', str(ckpt),
                 '--views', '1,1', '--labels', str(labels), '--top', '2']) == 0
    printed = capsys.readouterr().out
    assert printed.count('(1 views') == 2 and 'thing ' in printed


@pytest.mark.parametrize('args,message', [
    (['missing.mp4'], 'video not found: missing.mp4'),
    (['{bad}'], 'cannot be read as a video'),
    (['{video}', '--views', '1'], '--views must be CLIPS,CROPS'),
    (['{video}', '--views', '1,5'], '--views: CLIPS must be >= 1 and CROPS 1, 3 or 10'),
    (['{video}', '--top', '0'], '--top must be >= 1'),
    (['{video}', '--model', 'tsm_r50_nothing'], '--model'),
    (['{video}', '--model', MBV2, '--weights', 'nowhere.pth'], '--weights: no such file'),
])
def test_bad_input_fails_in_one_line(args, message, tmp_path, video, capsys):
    bad = tmp_path / 'bad.mp4'
    bad.write_text('this is text\n')
    args = [a.format(video=video, bad=bad) for a in args]
    status = main(['predict', *args])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith('tsmnet predict: error: ') and err.count('\n') == 1, err
    assert message in err
