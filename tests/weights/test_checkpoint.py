"""Reading checkpoints safely and loading them strictly (tsmnet.weights.checkpoint,
tsmnet.weights.safe_globals).

Every file here is built by the test in the exact layout of its source: torchvision keys and
shapes from the reference listing (torchvision 0.29.1), MMEngine Runner checkpoints written
by a real MMEngine ``Runner``.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import pickletools
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModel
from torch import nn

from tsmnet import ResNet, ResNetTSM
from tsmnet.weights.checkpoint import (
    CheckpointMismatchError,
    LoadReport,
    UnsafeCheckpointError,
    load_pretrained,
    read_checkpoint,
    read_state_dict,
)
from tsmnet.weights.safe_globals import restricted_getattr, safe_globals

# torchvision 0.29.1's real keys and shapes (../shared/reference), kept compressed beside
# the tests so that they run from any checkout
TESTS = Path(__file__).resolve().parents[1]
REFERENCE = TESTS / 'data' / 'torchvision_resnet_state_dict_shapes.json.gz'
SHARED_REFERENCE = TESTS.parents[1] / 'shared' / 'reference' / \
    'torchvision_resnet_state_dict_shapes.json'
NL_CFG = dict(sub_sample=True, use_scale=False, norm_cfg=dict(type='BN3d', requires_grad=True),
              mode='embedded_gaussian')


@pytest.fixture(scope='module')
def torchvision_shapes() -> dict[str, dict[str, list[int]]]:
    return json.loads(gzip.decompress(REFERENCE.read_bytes()))['models']


def test_reference_copy_is_the_shared_listing(torchvision_shapes):
    if not SHARED_REFERENCE.is_file():
        pytest.skip(f'{SHARED_REFERENCE} is not beside this checkout')
    assert json.loads(SHARED_REFERENCE.read_text())['models'] == torchvision_shapes
    assert sorted(torchvision_shapes) == [f'resnet{d}' for d in (101, 152, 18, 34, 50)]


def torchvision_state_dict(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Tensors of the listed shapes; tensor i holds the value i (to trace where it lands)."""
    return {key: torch.full(shape, float(i)) if shape else torch.tensor(i)
            for i, (key, shape) in enumerate(shapes.items())}


def torchvision_name(model_key: str) -> str:
    """The torchvision name of a tsmnet key, written independently of tsmnet.weights.keymap."""
    parts = [p for p in model_key.split('.') if p not in ('net', 'block')]
    key = '.'.join(parts)
    key = re.sub(r'^conv1\.conv\.', 'conv1.', key)
    key = re.sub(r'^conv1\.bn\.', 'bn1.', key)
    key = re.sub(r'\.conv(\d)\.conv\.', r'.conv\1.', key)
    key = re.sub(r'\.conv(\d)\.bn\.', r'.bn\1.', key)
    return key.replace('.downsample.conv.', '.downsample.0.').replace('.downsample.bn.',
                                                                      '.downsample.1.')


def assert_traced(model: nn.Module, source: dict[str, torch.Tensor],
                  report: LoadReport) -> None:
    """Every model key not reported as new holds the value of its torchvision key."""
    new = set(report.new_modules)
    own = model.state_dict()
    for key, value in own.items():
        if key in new:
            assert 'non_local_block' in key
            continue
        expected = source[torchvision_name(key)]
        assert value.shape == expected.shape, key
        assert torch.equal(value.to(expected.dtype), expected), key
    assert len(report.loaded) == len(own) - len(new)


# --- torchvision: the real key layout of every depth --------------------------------------

@pytest.mark.parametrize('shift_place', ['blockres', 'block'])
@pytest.mark.parametrize('depth', [18, 34, 50, pytest.param(101, marks=pytest.mark.slow),
                                   pytest.param(152, marks=pytest.mark.slow)])
def test_torchvision_layout_every_depth(tmp_path, torchvision_shapes, depth, shift_place):
    source = torchvision_state_dict(torchvision_shapes[f'resnet{depth}'])
    path = tmp_path / f'resnet{depth}.pth'
    torch.save(source, path)
    model = ResNetTSM(depth, num_segments=4, shift_place=shift_place)
    report = load_pretrained(model, path, torchvision=True)
    assert report.complete and not report.new_modules and report.source_format == 'torchvision'
    assert_traced(model, source, report)


@pytest.mark.parametrize('depth, shift_place', [(18, 'blockres'), (18, 'block'),
                                               pytest.param(50, 'block', marks=pytest.mark.slow)])
def test_torchvision_with_temporal_pool_and_non_local(tmp_path, torchvision_shapes, depth,
                                                      shift_place):
    source = torchvision_state_dict(torchvision_shapes[f'resnet{depth}'])
    path = tmp_path / 'tv.pth'
    torch.save(source, path)
    model = ResNetTSM(depth, num_segments=4, shift_place=shift_place, temporal_pool=True,
                      non_local=((0, 0), (1, 0), (1, 1), (0, 0)) if depth == 18 else
                      ((0,) * 3, (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0,) * 3),
                      non_local_cfg=NL_CFG)
    model.init_weights()  # the non-local blocks' own initialisation
    init = {k: v.clone() for k, v in model.state_dict().items() if 'non_local_block' in k}
    report = load_pretrained(model, path, torchvision=True)
    assert report.complete
    assert sorted(report.new_modules) == sorted(init)  # only non-local keys stay initialised
    assert_traced(model, source, report)
    for key, value in init.items():
        assert torch.equal(model.state_dict()[key], value)


def test_torchvision_plain_resnet_and_fewer_stages(tmp_path, torchvision_shapes):
    source = torchvision_state_dict(torchvision_shapes['resnet18'])
    path = tmp_path / 'tv.pth'
    torch.save(source, path)
    model = ResNet(18, num_stages=3, out_indices=(2,), strides=(1, 2, 2), dilations=(1, 1, 1))
    report = load_pretrained(model, path, torchvision=True)
    assert report.complete
    # the ImageNet classifier, then the unbuilt stage (under their tsmnet names)
    assert report.skipped[:2] == ['fc.weight', 'fc.bias']
    assert all(k.startswith('layer4.') for k in report.skipped[2:])
    assert len(report.skipped[2:]) == sum(k.startswith('layer4.') for k in source)
    assert_traced(model, source, report)


def test_torchvision_without_num_batches_tracked(tmp_path, torchvision_shapes):
    """torchvision's original ImageNet files predate BN's num_batches_tracked buffer."""
    source = {k: v for k, v in torchvision_state_dict(torchvision_shapes['resnet18']).items()
              if not k.endswith('num_batches_tracked')}
    torch.save(source, tmp_path / 'old.pth')
    model = ResNetTSM(18, num_segments=2)
    assert load_pretrained(model, tmp_path / 'old.pth', torchvision=True).complete
    assert model.layer1[0].conv1.bn.num_batches_tracked.item() == 0


def test_matches_mmaction_loader(tmp_path, torchvision_shapes, mmaction_models):
    """The same torchvision file gives MMAction2's own ResNetTSM the same weights."""
    source = {k: torch.randn(s) if s else torch.tensor(7)
              for k, s in torchvision_shapes['resnet50'].items()}
    path = str(tmp_path / 'tv.pth')
    torch.save(source, path)
    kwargs = dict(num_segments=4, temporal_pool=True, non_local=((0,) * 3, (1, 0, 1, 0),
                  (1, 0, 1, 0, 1, 0), (0,) * 3), non_local_cfg=NL_CFG)
    ref = mmaction_models.ResNetTSM(50, pretrained=path, **kwargs)
    ref.init_weights()
    ours = ResNetTSM(50, pretrained=path, **kwargs)
    ours.init_weights()
    theirs = ref.state_dict()
    assert theirs.keys() == ours.state_dict().keys()
    compared = 0
    for key, value in ours.state_dict().items():
        # non-local blocks: randomly initialised in both; num_batches_tracked: the reference
        # leaves it out of its torchvision mapping (it stays 0 there)
        if 'non_local_block' not in key and not key.endswith('num_batches_tracked'):
            assert torch.equal(value, theirs[key]), key
            compared += 1
    assert compared == 265  # every weight and BN statistic of ResNet-50


# --- strictness and clear errors ----------------------------------------------------------

def test_partial_file_refused_and_nothing_loaded(tmp_path, torchvision_shapes):
    source = torchvision_state_dict(torchvision_shapes['resnet18'])
    del source['layer2.1.conv2.weight']
    source['layer1.0.bn1.weight'] = torch.ones(3)
    source['extra.weight'] = torch.ones(1)
    path = tmp_path / 'partial.pth'
    torch.save(source, path)
    model = ResNetTSM(18, num_segments=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_pretrained(model, path, torchvision=True)
    message = str(info.value)
    assert str(path) in message
    assert 'missing keys: layer2.1.conv2.conv.weight' in message
    assert 'unexpected keys: extra.weight' in message
    assert 'layer1.0.conv1.bn.weight (checkpoint (3,), model (64,))' in message
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f'{key} changed by a refused load'
    report = load_pretrained(model, path, torchvision=True, strict=False)
    assert report.missing == ['layer2.1.conv2.conv.weight'] and not report.complete


def test_native_file_missing_a_wrapped_key_is_refused(tmp_path):
    """A tsmnet/MMAction2 checkpoint lacking a shifted conv's weight is not loaded partially."""
    model = ResNetTSM(18, num_segments=2, non_local=((0, 0), (1, 0), (0, 0), (0, 0)),
                      non_local_cfg=NL_CFG)
    state = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    for gone in ('backbone.layer1.0.conv1.conv.net.weight',
                 'backbone.layer2.0.non_local_block.theta.conv.weight'):
        partial = {k: v for k, v in state.items() if k != gone}
        torch.save({'state_dict': partial}, tmp_path / 'partial.pth')
        with pytest.raises(CheckpointMismatchError, match=f'missing keys: {gone[9:]}'):
            load_pretrained(ResNetTSM(18, num_segments=2, non_local=((0, 0), (1, 0), (0, 0),
                                      (0, 0)), non_local_cfg=NL_CFG),
                            tmp_path / 'partial.pth', torchvision=False)


def test_missing_file_named(tmp_path):
    path = tmp_path / 'nowhere.pth'
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_pretrained(ResNetTSM(18, num_segments=2), path, torchvision=True)


@pytest.mark.parametrize('legacy', [False, True])
def test_truncated_file_named(tmp_path, torchvision_shapes, legacy):
    path = tmp_path / 'cut.pth'
    torch.save(torchvision_state_dict(torchvision_shapes['resnet18']), path,
               _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=rf'cannot read checkpoint {re.escape(str(path))}: '
                                         r'it is truncated'):
        read_state_dict(path)


def test_corrupt_and_empty_files_named(tmp_path):
    noise = tmp_path / 'noise.pth'
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match=re.escape(str(noise))):
        read_state_dict(noise)
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=re.escape(str(empty))):
        read_state_dict(empty)
    text = tmp_path / 'notes.txt'  # not a pickle at all: nothing unsafe, just not a checkpoint
    text.write_text('not a checkpoint\n')
    with pytest.raises(ValueError, match=r'notes.txt: it is truncated, corrupt or not a PyTorch '
                       r'checkpoint \(UnpicklingError: Unsupported operand') as info:
        read_state_dict(text)
    assert not isinstance(info.value, UnsafeCheckpointError)
    no_tensors = tmp_path / 'meta_only.pth'
    torch.save({'epoch': 3, 'meta': {'a': 1}}, no_tensors)
    with pytest.raises(ValueError, match=rf'{re.escape(str(no_tensors))} holds no state dict'):
        read_state_dict(no_tensors)


def test_truncated_safetensors_named(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / 'cut.safetensors'
    save_file({'conv1.weight': torch.randn(64, 3, 7, 7)}, str(path))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_state_dict(path)


def test_other_architecture_named(tmp_path):
    vit = {'cls_token': torch.zeros(1, 1, 8), 'pos_embed': torch.zeros(1, 5, 8),
           'patch_embed.proj.weight': torch.zeros(8, 3, 4, 4),
           'blocks.0.attn.qkv.weight': torch.zeros(24, 8), 'head.weight': torch.zeros(10, 8)}
    path = tmp_path / 'vit.pth'
    torch.save(vit, path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_pretrained(ResNetTSM(18, num_segments=2), path, torchvision=False)
    assert str(path) in str(info.value)
    assert 'does not look like a checkpoint of this ResNet' in str(info.value)


def test_other_depth_named(tmp_path, torchvision_shapes):
    path = tmp_path / 'r50.pth'
    torch.save(torchvision_state_dict(torchvision_shapes['resnet50']), path)
    with pytest.raises(CheckpointMismatchError,
                       match=rf'{re.escape(str(path))} .*ResNet-50, the model is a ResNet-18'):
        load_pretrained(ResNetTSM(18, num_segments=2), path, torchvision=True)


# --- in_channels != 3: the stem is inflated, as TSN does for optical flow -----------------

def test_flow_stem_inflated_equivalence(tmp_path, torchvision_shapes):
    source = {k: torch.randn(s) * 0.1 if s else torch.tensor(0)
              for k, s in torchvision_shapes['resnet18'].items()}
    for key in source:
        if key.endswith('running_var'):
            source[key] = torch.rand(source[key].shape) + 0.5
    path = tmp_path / 'tv.pth'
    torch.save(source, path)
    rgb, flow = ResNetTSM(18, num_segments=2), ResNetTSM(18, num_segments=2, in_channels=2)
    load_pretrained(rgb, path, torchvision=True)
    report = load_pretrained(flow, path, torchvision=True)
    assert report.inflated == ['conv1.conv.weight'] and report.complete
    weight = flow.conv1.conv.weight
    assert weight.shape == (64, 2, 7, 7)
    expected = source['conv1.weight'].mean(dim=1)
    assert torch.allclose(weight[:, 0], expected) and torch.equal(weight[:, 0], weight[:, 1])
    # the inflated stem sees x0 + x1 as the RGB stem sees three channels of (x0 + x1) / 3
    x = torch.randn(4, 2, 32, 32)
    with torch.no_grad():
        out_flow = flow.eval()(x)
        out_rgb = rgb.eval()(((x[:, :1] + x[:, 1:]) / 3).expand(-1, 3, -1, -1))
    assert torch.allclose(out_flow, out_rgb, atol=1e-5)


# --- safety: code in a pickle never runs --------------------------------------------------

class _CreatesFile:
    """Unpickling this calls ``open(path, 'w')``: it creates a file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


class _AsksGetattr:
    """Unpickling this calls ``getattr(obj, name)`` with the builtin's global name."""

    def __init__(self, obj, name: str) -> None:
        self.obj, self.name = obj, name

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


@pytest.mark.parametrize('writer', ['zip', 'legacy', 'pickle'])
def test_malicious_pickle_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / 'pwned.txt'
    payload = {'state_dict': {'conv1.conv.weight': torch.zeros(1)}, 'x': _CreatesFile(marker)}
    path = tmp_path / 'evil.pth'
    if writer == 'pickle':
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=writer == 'zip')
    assert not marker.exists()
    model = ResNetTSM(18, num_segments=2)
    with pytest.raises(ValueError) as info:
        load_pretrained(model, path, torchvision=False)
    assert str(path) in str(info.value)
    if writer != 'pickle':  # a raw pickle is not even a torch file; both are refused
        assert isinstance(info.value, UnsafeCheckpointError)
        assert 'it needs io.open' in str(info.value) and 'could run code' in str(info.value)
    assert not marker.exists(), 'the payload of the pickle ran'


@pytest.mark.parametrize('obj, name', [(HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                                       (HistoryBuffer, '__class__'), (torch.Tensor, 'mean'),
                                       (np.ndarray, 'tofile')])
def test_getattr_is_restricted(tmp_path, obj, name):
    path = tmp_path / 'getattr.pth'
    torch.save({'m': _AsksGetattr(obj, name)}, path)
    with pytest.raises(UnsafeCheckpointError,
                       match=rf'{re.escape(str(path))}: refused getattr\('):
        read_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        restricted_getattr(obj, name)


def test_getattr_allows_history_buffer_statistics(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save({n: _AsksGetattr(HistoryBuffer, n) for n in ('min', 'max', 'current', 'mean')},
               path)
    loaded = read_checkpoint(path)
    assert loaded == {n: getattr(HistoryBuffer, n) for n in ('min', 'max', 'current', 'mean')}


def test_allow_list_has_no_blanket_builtins():
    entries = safe_globals()
    objects = [e[0] if isinstance(e, tuple) else e for e in entries]
    assert getattr not in objects and eval not in objects and exec not in objects
    assert np.dtypes.ObjectDType not in objects
    assert (restricted_getattr, 'builtins.getattr') in entries


# --- MMEngine Runner checkpoints ----------------------------------------------------------

class _Clips(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)))


class _TinyRecognizer(BaseModel):
    """A BaseModel holding a tsmnet backbone, so keys are 'backbone.…' as in MMAction2."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNetTSM(18, num_segments=2, out_indices=(3,))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = inputs.flatten(0, 1)
        out = self.backbone(x).mean()
        return dict(loss=out) if mode == 'loss' else out


def _runner(work_dir: Path, max_epochs: int, **kwargs):
    from mmengine.runner import Runner

    return Runner(model=_TinyRecognizer(), work_dir=str(work_dir),
                  train_dataloader=dict(dataset=_Clips(), batch_size=2, num_workers=0,
                                        sampler=dict(type='DefaultSampler', shuffle=False),
                                        collate_fn=dict(type='default_collate')),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
                  train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                                     logger=dict(type='LoggerHook', interval=1)),
                  default_scope=None, experiment_name=f'exp{max_epochs}', **kwargs)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint written by a real MMEngine Runner (as MMAction2's tools/train.py does)."""
    work_dir = tmp_path_factory.mktemp('runner')
    _runner(work_dir, max_epochs=1).train()
    path = work_dir / 'epoch_1.pth'
    assert path.is_file()
    return path


def _pickle_globals(path: Path) -> set[str]:
    """The globals that the pickle inside a torch zip checkpoint names."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    return {arg.replace(' ', '.') for op, arg, _ in pickletools.genops(data)
            if op.name == 'GLOBAL'}


def test_runner_checkpoint_needs_the_allow_list(runner_checkpoint):
    names = _pickle_globals(runner_checkpoint)
    assert {'__builtin__.getattr', 'mmengine.logging.history_buffer.HistoryBuffer',
            'numpy.ndarray', 'numpy.dtype'} <= names
    assert any(g.endswith('multiarray.scalar') for g in names)


@pytest.mark.slow  # a new process
def test_custom_imports_of_tsmnet_make_runner_checkpoints_load(runner_checkpoint):
    """Without tsmnet, torch.load refuses the file; once a config's ``custom_imports =
    ['tsmnet']`` has imported it (as tools/test.py does, after importing the Runner), it
    loads."""
    code = (
        'import sys, torch\n'
        'from mmengine.runner import Runner\n'
        'from mmengine.utils import import_modules_from_strings\n'
        f'path = {str(runner_checkpoint)!r}\n'
        'try:\n'
        '    torch.load(path)\n'
        '    print("loaded-before-import")\n'
        'except Exception as err:\n'
        '    print("refused-before-import", type(err).__name__)\n'
        'import_modules_from_strings(["tsmnet"])  # what custom_imports does\n'
        'ckpt = torch.load(path)\n'
        'hub = ckpt["message_hub"]\n'
        'print("loaded", type(hub["log_scalars"]["train/loss"]).__name__,\n'
        '      type(hub["runtime_info"]["eta"]).__name__)\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'refused-before-import UnpicklingError' in out.stdout
    assert 'loaded HistoryBuffer float64' in out.stdout


def test_runner_checkpoint_loads_into_backbone(runner_checkpoint):
    ckpt = read_checkpoint(runner_checkpoint)
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    model = ResNetTSM(18, num_segments=2)
    report = load_pretrained(model, runner_checkpoint, torchvision=False)
    assert report.complete and report.source_format == 'mmaction'
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt['state_dict'][f'backbone.{key}']), key


@pytest.mark.slow  # an MMEngine Runner trains (it starts processes: gcc --version, git)
def test_runner_resume_from_checkpoint(tmp_path, runner_checkpoint):
    """Runner `--resume` (tools/train.py) reads back what training wrote, message hub too."""
    saved = read_checkpoint(runner_checkpoint)['message_hub']['log_scalars']['train/loss']
    runner = _runner(tmp_path, max_epochs=2, resume=True, load_from=str(runner_checkpoint))
    runner.train()
    assert runner.iter == 4 and runner.epoch == 2
    losses = runner.message_hub.get_scalar('train/loss')
    log, _ = losses.data
    assert np.array_equal(log[:len(saved.data[0])], saved.data[0])  # the resumed history
    assert len(log) == len(saved.data[0]) + 2


def test_message_hub_numpy_scalars(tmp_path):
    hub = MessageHub.get_instance('tsmnet-test-hub')
    hub.update_scalar('train/loss', np.float32(0.5))
    hub.update_scalar('train/acc', 1)
    for name, value in dict(eta=np.float64(1.5), steps=np.int64(3), flag=np.bool_(True),
                            half=np.float16(2.0), small=np.uint8(7)).items():
        hub.update_info(name, value)
    path = tmp_path / 'hub.pth'
    torch.save({'state_dict': {'backbone.w': torch.zeros(1)}, 'meta': {'epoch': 1},
                'message_hub': hub.state_dict()}, path)
    loaded = read_checkpoint(path)['message_hub']
    for name in ('eta', 'steps', 'flag', 'half', 'small'):
        assert loaded['runtime_info'][name] == hub.runtime_info[name]
        assert type(loaded['runtime_info'][name]) is type(hub.runtime_info[name])
    assert loaded['log_scalars']['train/loss'].current() == 0.5


def test_the_mmengine_glue_allow_lists_runner_checkpoints():
    """``tsmnet.registry`` (what ``custom_imports=['tsmnet']`` imports) has put every entry of
    the allow-list in torch's; an empty report is complete."""
    import tsmnet.registry  # noqa: F401

    allowed = torch.serialization.get_safe_globals()
    missing = [entry for entry in safe_globals() if entry not in allowed]
    assert not missing and len(safe_globals()) >= 8
    assert LoadReport().complete


def test_tsm_file_loads_into_a_tsn_backbone_and_back(tmp_path):
    """A TSM checkpoint (wrapped keys) fills an is_shift=False backbone strictly, tensor for
    tensor, and a TSN's (plain keys) fills a TSM; the moved keys are reported."""
    torch.manual_seed(0)
    tsm, tsn = ResNetTSM(18, num_segments=4), ResNetTSM(18, num_segments=4, is_shift=False)
    for src, dst in ((tsm, tsn), (tsn, ResNetTSM(18, num_segments=4))):
        torch.save({'state_dict': {f'backbone.{k}': v for k, v in src.state_dict().items()}},
                   tmp_path / 'file.pth')
        report = load_pretrained(dst, tmp_path / 'file.pth', torchvision=False)
        assert report.complete and len(report.rewrapped) == 8  # the 8 shifted convs
        plain = {re.sub(r'\.net\.', '.', k): v for k, v in src.state_dict().items()}
        for key, value in dst.state_dict().items():
            assert torch.equal(value, plain[re.sub(r'\.net\.', '.', key)]), key
