"""End to end: MMAction2's Recognizer2D + TSMHead + ActionDataPreprocessor on tsmnet's
backbone, trained by MMEngine's Runner on a synthetic rawframes dataset read by MMAction2's own
pipeline; the checkpoint it saves reloads (``weights_only=True``) and tests identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from synthetic_video import write_config, write_rawframes

import tsmnet


@pytest.mark.slow
def test_train_save_reload_test(mmaction_models, tmp_path: Path) -> None:
    ann = write_rawframes(tmp_path / 'data')
    cfg_path = write_config(tmp_path / 'config.py', tmp_path / 'data', ann, max_epochs=4)
    cfg = Config.fromfile(str(cfg_path))
    cfg.work_dir = str(tmp_path / 'work')

    from mmaction.models.heads import TSMHead
    from mmaction.models.recognizers import Recognizer2D

    runner = Runner.from_cfg(cfg)
    assert type(runner.model) is Recognizer2D
    assert type(runner.model.backbone) is tsmnet.ResNetTSM  # the drop-in, through the Runner
    assert type(runner.model.cls_head) is TSMHead
    initial = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()

    losses, _ = runner.message_hub.get_scalar('train/loss').data
    assert len(losses) == 8  # 4 epochs x 2 iterations
    assert np.isfinite(losses).all()
    assert losses[-2:].mean() < 0.5 * losses[:2].mean(), losses
    trained = runner.model.state_dict()
    assert any(not torch.equal(initial[k], trained[k]) for k in trained if 'backbone' in k)

    ckpt = Path(cfg.work_dir) / 'epoch_4.pth'
    assert ckpt.is_file()
    # what torch 2.13 does by default; needs tsmnet's allow-list for MMEngine's HistoryBuffer
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert saved['meta']['epoch'] == 4
    for k, v in trained.items():
        assert torch.equal(saved['state_dict'][k], v), k
    metrics = runner.test()
    assert 0.0 <= metrics['acc/top1'] <= 1.0

    # a fresh Runner (as `tools/test.py --checkpoint` builds it) loads the checkpoint and tests
    reload_cfg = cfg.copy()
    reload_cfg.work_dir = str(tmp_path / 'work_test')
    reload_cfg.load_from = str(ckpt)
    tester = Runner.from_cfg(reload_cfg)
    reloaded_metrics = tester.test()
    reloaded = tester.model.state_dict()
    for k, v in trained.items():
        assert torch.equal(reloaded[k], v), k
    assert reloaded_metrics == metrics
