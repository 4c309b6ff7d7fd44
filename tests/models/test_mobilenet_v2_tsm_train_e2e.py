"""End to end: MMAction2's Recognizer2D + TSMHead on tsmnet's MobileNetV2TSM (built from a
plain ``type='MobileNetV2TSM'``, the drop-in), trained by MMEngine's Runner on the synthetic
rawframes dataset; the checkpoint reloads (``weights_only=True``) and tests identically, and
the causal model it trained streams frame by frame exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from synthetic_video import NUM_SEGMENTS, write_config, write_rawframes

import tsmnet

BACKBONE = f'''
model['backbone'] = dict(type='MobileNetV2TSM', num_segments={NUM_SEGMENTS}, pretrained=None,
                         shift_mode='causal')
model['cls_head']['in_channels'] = 1280
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.0))
'''


@pytest.mark.slow
def test_runner_trains_mobilenet_v2_tsm(mmaction_models, tmp_path: Path) -> None:
    # the Runner makes 'mmaction' the default scope of the process: restore it afterwards,
    # so that later tests build in the scope they expect
    with DefaultScope.overwrite_default_scope('mmaction'):
        _train_test_stream(tmp_path)


def _train_test_stream(tmp_path: Path) -> None:
    ann = write_rawframes(tmp_path / 'data')
    cfg_path = write_config(tmp_path / 'config.py', tmp_path / 'data', ann, max_epochs=4,
                            extra=BACKBONE)
    cfg = Config.fromfile(str(cfg_path))
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    backbone = runner.model.backbone
    assert type(backbone) is tsmnet.MobileNetV2TSM  # the drop-in, through the Runner
    initial = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()

    losses, _ = runner.message_hub.get_scalar('train/loss').data
    assert len(losses) == 8 and np.isfinite(losses).all()
    assert losses[-2:].mean() < 0.5 * losses[:2].mean(), losses
    trained = runner.model.state_dict()
    assert any(not torch.equal(initial[k], trained[k]) for k in trained if '.net.' in k)
    metrics = runner.test()

    ckpt = Path(cfg.work_dir) / 'epoch_4.pth'
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    reload_cfg = cfg.copy()
    reload_cfg.work_dir = str(tmp_path / 'work_test')
    reload_cfg.load_from = str(ckpt)
    tester = Runner.from_cfg(reload_cfg)
    assert tester.test() == metrics
    for k, v in saved['state_dict'].items():
        assert torch.equal(tester.model.state_dict()[k], v), k

    # the trained causal backbone streams: frame t equals the offline clip's frame t
    backbone.eval()
    clip = torch.randn(NUM_SEGMENTS, 3, 32, 32)
    with torch.no_grad():
        offline = backbone(clip)
    stream = tsmnet.TSMStream(backbone)
    online = torch.cat([stream.step(clip[t:t + 1]) for t in range(NUM_SEGMENTS)])
    torch.testing.assert_close(online, offline, rtol=0, atol=1e-5)
