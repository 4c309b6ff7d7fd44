"""Every config in configs/, and every ResNetTSM and MobileNetV2TSM config in the mmaction2
wheel, builds tsmnet's backbone through MMAction2's registry, in either import order, each
order in a fresh process.

The wheel's configs are used unchanged: a two-line wrapper inherits one and adds
``custom_imports=dict(imports=['tsmnet'])``, as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

pytest.importorskip('mmaction')

import mmaction  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / 'tests' / 'mmaction_launch.py'
OUR_CONFIGS = sorted((ROOT / 'configs').rglob('*.py'))
MMACTION_CONFIG_ROOT = Path(mmaction.__path__[0]) / '.mim' / 'configs'


DROP_IN_TYPES = ('ResNetTSM', 'MobileNetV2TSM')


def _mentions_resnet_tsm(node) -> bool:
    """Whether a config node builds one of the backbones tsmnet drops in."""
    if isinstance(node, dict):
        return node.get('type') in DROP_IN_TYPES or any(map(_mentions_resnet_tsm, node.values()))
    if isinstance(node, (list, tuple)):
        return any(map(_mentions_resnet_tsm, node))
    return False


def _wheel_resnet_tsm_configs() -> list[Path]:
    """The wheel's configs whose resolved ``model`` has a ``ResNetTSM`` or ``MobileNetV2TSM``
    (loading is cheap)."""
    found = []
    for path in sorted(MMACTION_CONFIG_ROOT.rglob('*.py')):
        if '_base_' in path.parts:
            continue
        if _mentions_resnet_tsm(Config.fromfile(str(path)).get('model')):
            found.append(path)
    return found


WHEEL_CONFIGS = _wheel_resnet_tsm_configs()

# Runs in a fresh interpreter: argv[1] is the import order, argv[2] a JSON list of configs.
# For each config: the backbone's class and the arguments it was built with, the classes of the
# other parts, and (mmaction-first only) whether the state-dict keys and shapes equal those of
# the same model built with MMAction2's own ResNetTSM, i.e. MMAction2 checkpoints load.
BUILD_SCRIPT = r'''
import json, sys
import torch
order, paths = sys.argv[1], json.loads(sys.argv[2])
if order == 'mmaction-first':
    import mmaction.models  # the launcher has put the drn stand-in in place
from mmengine.config import Config
from mmengine.registry import init_default_scope
out = {'mmaction.models imported by tsmnet': None, 'configs': {}}
for path in paths:
    cfg = Config.fromfile(path)  # custom_imports=['tsmnet']: imports tsmnet on the first one
    if out['mmaction.models imported by tsmnet'] is None:
        out['mmaction.models imported by tsmnet'] = (
            order == 'tsmnet-first' and 'mmaction.models' in sys.modules)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    from mmaction.registry import MODELS
    # tsmnet-first builds for real; mmaction-first, which also builds every model a second time
    # with MMAction2's class, compares structures on the meta device (no weight init cost)
    with torch.device('meta' if order == 'mmaction-first' else 'cpu'):
        model = MODELS.build(cfg.model)
    bb = model.backbone
    nl = sum(type(m).__name__ == 'NL3DWrapper' for m in bb.modules())
    info = dict(
        backbone=f'{type(bb).__module__}.{type(bb).__qualname__}',
        head=f'{type(model.cls_head).__module__}.{type(model.cls_head).__qualname__}',
        recognizer=f'{type(model).__module__}.{type(model).__qualname__}',
        neck=(type(model.neck).__module__ if getattr(model, 'neck', None) is not None
              else None),
        depth=getattr(bb, 'depth', None), num_segments=bb.num_segments,
        temporal_pool=getattr(bb, 'temporal_pool', False),
        out_indices=list(bb.out_indices), non_local_blocks=nl,
        resnet_tin=MODELS.get('ResNetTIN').__module__,
    )
    if order == 'mmaction-first':
        import mmaction.models.backbones as backbones
        Reference = getattr(backbones, type(bb).__name__)
        ref_cfg = cfg.model.copy()
        ref_cfg.backbone = dict(ref_cfg.backbone, type=Reference)
        with torch.device('meta'):
            ref = MODELS.build(ref_cfg)
        ours = {k: list(v.shape) for k, v in model.state_dict().items()}
        theirs = {k: list(v.shape) for k, v in ref.state_dict().items()}
        info['same_state_dict_as_mmaction'] = ours == theirs
        del ref
    out['configs'][path] = info
    del model
print('RESULT' + json.dumps(out))
'''


def _build_all(order: str, paths: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, str(LAUNCH), '-c', BUILD_SCRIPT, order, json.dumps(paths)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(li for li in proc.stdout.splitlines() if li.startswith('RESULT'))
    return json.loads(line[len('RESULT'):])


def _wrapper_configs(tmp_path: Path) -> dict[str, Path]:
    """An unchanged wheel config plus ``custom_imports=['tsmnet']``, one wrapper each."""
    wrappers = {}
    for i, path in enumerate(WHEEL_CONFIGS):
        wrapper = tmp_path / f'wheel_{i:02d}_{path.name}'
        wrapper.write_text(
            f'_base_ = [{str(path)!r}]\n'
            "custom_imports = dict(imports=['tsmnet'], allow_failed_imports=False)\n")
        wrappers[str(wrapper)] = path
    return wrappers


def test_config_sets_are_complete() -> None:
    names = {p.name for p in OUR_CONFIGS}
    for part in ('r50_8xb16-1x1x8-50e_kinetics400', 'r50_8xb16-1x1x16-50e_kinetics400',
                 'r50_8xb16-1x1x8-50e_sthv2', 'r50_8xb16-1x1x16-50e_sthv2', 'r101_',
                 'nl-dot-product', 'nl-embedded-gaussian', 'nl-gaussian', 'temporal-pool',
                 'tpn-tsm', 'mobilenetv2_8xb16-1x1x8-100e_kinetics400'):
        assert any(part in n for n in names), part
    # the wheel ships 11 ResNetTSM configs (R50 k400/sthv2, 1x1x16, dense, 100e, R101, NL x3,
    # TPN) and 1 MobileNetV2TSM config; discovery that found none would make the wheel tests
    # below vacuous
    assert len(WHEEL_CONFIGS) >= 12, WHEEL_CONFIGS
    assert any('mobilenetv2' in p.name for p in WHEEL_CONFIGS), WHEEL_CONFIGS


def test_our_configs_inherit_from_the_wheel() -> None:
    """Each config's ``_base_`` is an MMAction2 config of the installed package."""
    for path in OUR_CONFIGS:
        base = Config._get_base_files(str(path))
        assert len(base) == 1, path
        assert Path(base[0]).is_file() and MMACTION_CONFIG_ROOT in Path(base[0]).parents, base
        cfg = Config.fromfile(str(path))
        assert cfg.model.backbone.type in ('tsmnet.ResNetTSM', 'tsmnet.MobileNetV2TSM')
        assert cfg.custom_imports == dict(imports=['tsmnet'], allow_failed_imports=False)


@pytest.mark.slow
@pytest.mark.parametrize('order', ['tsmnet-first', 'mmaction-first'])
def test_every_config_builds_tsmnet(order: str, tmp_path: Path) -> None:
    wrappers = _wrapper_configs(tmp_path)
    paths = [str(p) for p in OUR_CONFIGS] + list(wrappers)
    result = _build_all(order, paths)
    # the drop-in has MMAction2's registry import its models before registering tsmnet's
    # classes (docs/mmaction2.md#how-the-drop-in-works)
    assert result['mmaction.models imported by tsmnet'] is (order == 'tsmnet-first')
    for path in paths:
        info = result['configs'][path]
        cfg = Config.fromfile(path)
        bb = cfg.model.backbone
        assert info['backbone'] in ('tsmnet.models.resnet_tsm.ResNetTSM',
                                    'tsmnet.models.mobilenet_v2_tsm.MobileNetV2TSM'), (path, info)
        # MMAction2's other models are its own
        assert info['recognizer'].startswith('mmaction.models.recognizers'), info
        assert info['head'].startswith('mmaction.models.heads'), info
        assert info['resnet_tin'] == 'mmaction.models.backbones.resnet_tin', info
        # built with the config's arguments
        assert info['depth'] == bb.get('depth')
        assert info['num_segments'] == bb.get('num_segments', 8)
        assert info['temporal_pool'] == bb.get('temporal_pool', False)
        default_out = (7,) if 'MobileNetV2' in info['backbone'] else (3,)
        assert info['out_indices'] == list(bb.get('out_indices', default_out))
        assert (info['non_local_blocks'] > 0) == ('non_local' in bb), (path, info)
        if 'neck' in cfg.model:
            assert info['neck'].startswith('mmaction.models.necks'), info
        if order == 'mmaction-first':
            assert info['same_state_dict_as_mmaction'], path
    wheel_models = {str(p) for p in wrappers.values()}
    assert len(wheel_models) == len(WHEEL_CONFIGS)
