"""tsmnet's registries and the MMAction2 drop-in (``type='ResNetTSM'`` builds tsmnet's class)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

import tsmnet
from tsmnet import registry as tsmnet_registry


def _run(code: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize('scope', [None, 'mmengine', 'tsmnet'])
def test_scoped_name_builds_from_any_scope(scope: str | None) -> None:
    cfg = dict(type='tsmnet.ResNetTSM', depth=18, num_segments=4, pretrained=None)
    if scope is None:
        model = ROOT_MODELS.build(cfg)
    else:
        with DefaultScope.overwrite_default_scope(scope):
            model = ROOT_MODELS.build(cfg)
    assert type(model) is tsmnet.ResNetTSM
    assert model.num_segments == 4 and model.depth == 18
    assert tsmnet_registry.MODELS.get('ResNet') is tsmnet.ResNet
    assert tsmnet_registry.MODELS.scope == 'tsmnet'
    assert tsmnet_registry.MODELS.parent is ROOT_MODELS


@pytest.mark.slow  # a new process
def test_import_tsmnet_alone_changes_nothing() -> None:
    """A bare ``import tsmnet`` (MMEngine not in use) imports no registry, model or MMAction2
    module and leaves torch's unpickling allow-list as it was."""
    out = _run('''
        import sys
        import torch
        before = list(torch.serialization.get_safe_globals())
        import tsmnet
        loaded = [m for m in ('mmengine', 'mmcv', 'mmaction', 'tsmnet.registry',
                              'tsmnet.models', 'tsmnet.deploy', 'onnx') if m in sys.modules]
        print(loaded, torch.serialization.get_safe_globals() == before)
    ''').stdout.split()
    assert out == ['[]', 'True']


@pytest.mark.slow  # a new process
def test_scoped_type_imports_the_registry_and_the_drop_in() -> None:
    """``type='tsmnet.ResNetTSM'`` makes MMEngine import ``tsmnet.registry`` (its
    ``{scope}.registry`` convention), which puts the drop-in in place through the public API:
    MMAction2's registry has imported its models and keeps MMEngine's own methods."""
    out = _run('''
        import sys
        import tsmnet
        from mmengine.registry import MODELS
        m = MODELS.build(dict(type='tsmnet.ResNetTSM', depth=18, pretrained=None))
        from mmaction.registry import MODELS as MMACTION_MODELS
        print(type(m) is tsmnet.ResNetTSM, tsmnet.registry.MMACTION_DROP_IN,
              MMACTION_MODELS.module_dict['ResNetTSM'] is tsmnet.ResNetTSM,
              'mmaction.models' in sys.modules, '_register_module' in vars(MMACTION_MODELS))
    ''').stdout.split()
    assert out == ['True', 'True', 'True', 'True', 'False']


@pytest.mark.slow  # a new process
def test_works_without_mmaction() -> None:
    """With MMAction2 absent, tsmnet has its own registry and the drop-in is off."""
    out = _run('''
        import sys
        sys.modules['mmaction'] = None  # as if mmaction2 were not installed
        import tsmnet
        from mmengine.registry import MODELS
        m = MODELS.build(dict(type='tsmnet.ResNetTSM', depth=18, pretrained=None))
        print(type(m) is tsmnet.ResNetTSM, tsmnet.registry.MMACTION_DROP_IN,
              [k for k in sys.modules if k.startswith('mmaction')])
    ''').stdout.split()
    assert out == ['True', 'False', "['mmaction']"]


@pytest.mark.slow  # a new process
def test_broken_mmaction_does_not_break_tsmnet(tmp_path) -> None:
    """MMAction2 1.2.0 asserts its mmcv range on import (a full mmcv 2.2 fails it)."""
    fake = tmp_path / 'mmaction'
    fake.mkdir()
    (fake / '__init__.py').write_text("assert False, 'MMCV==2.2.0 is used but incompatible'\n")
    proc = subprocess.run(
        [sys.executable, '-c', 'import tsmnet; print(tsmnet.registry.MMACTION_DROP_IN)'],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == 'False'
    assert 'MMCV==2.2.0 is used but incompatible' in proc.stdout + proc.stderr


@pytest.fixture
def mmaction_registry():
    registry = pytest.importorskip('mmaction.registry').MODELS
    saved = dict(registry._module_dict)
    yield registry
    registry._module_dict.clear()
    registry._module_dict.update(saved)


def test_the_drop_in_registers_through_the_public_api(mmaction_registry) -> None:
    """No method of MMAction2's registry is replaced: MMAction2's models are imported before
    tsmnet's forced registration, and a later unforced registration of the name fails as
    MMEngine says (``import mmaction.models`` again registers nothing: it is imported)."""
    import mmaction.models  # noqa: F401  (a no-op: the drop-in imported it)

    assert '_register_module' not in vars(mmaction_registry)
    assert mmaction_registry.module_dict['ResNetTSM'] is tsmnet.ResNetTSM
    assert mmaction_registry.module_dict['MobileNetV2TSM'] is tsmnet.MobileNetV2TSM

    class ResNetTSM:  # stands for another package's unforced registration
        pass

    with pytest.raises(KeyError, match='already registered'):
        mmaction_registry.register_module(module=ResNetTSM)
    assert mmaction_registry.module_dict['ResNetTSM'] is tsmnet.ResNetTSM


def test_forced_registration_wins_and_reinstall_restores(mmaction_registry) -> None:
    """A user's deliberate ``force=True`` overrides the drop-in; installing again restores it."""

    class Mine:
        pass

    mmaction_registry.register_module(name='ResNetTSM', module=Mine, force=True)
    assert mmaction_registry.module_dict['ResNetTSM'] is Mine
    assert tsmnet_registry.install_mmaction_drop_in() is True
    assert mmaction_registry.module_dict['ResNetTSM'] is tsmnet.ResNetTSM


def test_drop_in_builds_in_mmaction_scope(mmaction_models) -> None:
    """In this process (either order, whichever test ran first): MMAction2's registry builds
    tsmnet's ResNetTSM and its own ResNetTIN, heads and recognizers."""
    from mmaction.models.backbones import ResNet, ResNetTIN
    from mmaction.models.heads import TSMHead
    from mmaction.registry import MODELS

    with DefaultScope.overwrite_default_scope('mmaction'):
        backbone = MODELS.build(dict(type='ResNetTSM', depth=18, num_segments=4,
                                     pretrained=None))
        tin = MODELS.build(dict(type='ResNetTIN', depth=18, pretrained=None))
    assert type(backbone) is tsmnet.ResNetTSM
    assert type(tin) is ResNetTIN
    assert MODELS.get('TSMHead') is TSMHead
    assert MODELS.get('ResNet') is ResNet


@pytest.mark.slow  # a new process
@pytest.mark.parametrize('order', ['tsmnet-first', 'mmaction-first'])
def test_mobilenet_v2_tsm_drop_in_in_both_import_orders(order: str) -> None:
    """``type='MobileNetV2TSM'`` builds tsmnet's class whichever of tsmnet and
    ``mmaction.models`` is imported first; MMAction2's plain ``MobileNetV2`` stays its own."""
    first = ('import tsmnet; import mmaction.models' if order == 'tsmnet-first'
             else 'import mmaction.models; import tsmnet')
    out = _run(f'''
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from mmaction_standin import load_compat_without_tsmnet
        load_compat_without_tsmnet().install_drn_standin()
        {first}
        from mmaction.registry import MODELS
        from mmengine.registry import DefaultScope
        with DefaultScope.overwrite_default_scope('mmaction'):
            m = MODELS.build(dict(type='MobileNetV2TSM', num_segments=4))
            plain = MODELS.build(dict(type='MobileNetV2'))
        scoped = tsmnet.registry.MODELS.build(dict(type='tsmnet.MobileNetV2', widen_factor=0.5))
        print(type(m) is tsmnet.MobileNetV2TSM, m.num_segments,
              type(plain).__module__, type(scoped) is tsmnet.MobileNetV2)
    ''').stdout.split()
    assert out == ['True', '4', 'mmaction.models.backbones.mobilenet_v2', 'True']
