"""``hubconf.py``: torch.hub lists one entry per zoo name and builds it as create_model does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

import tsmnet

REPO = Path(__file__).resolve().parents[2]
MBV2 = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'


def test_hubconf_has_one_entry_per_zoo_name() -> None:
    # torch.hub.list takes GitHub repositories only; it lists what this does for a local one
    spec = importlib.util.spec_from_file_location('hubconf', REPO / 'hubconf.py')
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    entries = {name for name in dir(hubconf)
               if callable(getattr(hubconf, name)) and not name.startswith('_')}
    assert entries == set(tsmnet.list_models())
    assert hubconf.dependencies == ['torch', 'mmengine', 'mmcv']


def test_hub_load_builds_the_entry_with_its_weights(tmp_path) -> None:
    reference = tsmnet.create_model(MBV2, num_segments=2).eval()
    path = tmp_path / 'weights.pth'
    torch.save({'state_dict': reference.state_dict()}, path)
    model = torch.hub.load(str(REPO), MBV2, source='local', pretrained=str(path),
                           num_segments=2).eval()
    assert type(model) is tsmnet.Recognizer and model.pretrained_cfg.name == MBV2
    clip = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(clip), reference(clip))
