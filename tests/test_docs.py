"""The README and docs/: every relative link resolves (files and #anchors), every path and module
they name exists, the README's Python code runs, and the README stays short with the block that
.ci/run reads."""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
PAGES = [README, *sorted((ROOT / 'docs').glob('*.md'))]
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^```(\w*)\n(.*?)^```$', re.S | re.M)
# a repository path (``src/tsmnet/shift/op.py``, ``tests/weights/``, ``benchmarks/*.py``), not
# the tail of a longer one (``csrc/shift.cpp``)
REPO_PATH = re.compile(r'(?<![\w./-])((?:src|tests|benchmarks)/[\w./*-]*)')
# a dotted tsmnet module path (``tsmnet.weights.keymap``, ``tsmnet.shift.explain``); names
# starting with a capital are registry types (``type='tsmnet.ResNetTSM'``), not modules
MODULE_PATH = re.compile(r'(?<![\w./:-])tsmnet((?:\.[a-z_]\w*)(?:\.\w+)*)')
NOT_MODULES = {'tsmnet.flock'}  # the lock file of the native build (docs/shift_engine.md)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub('', page.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r'^#+ (.+)$', text, re.M)}


def _links(page: Path) -> list[str]:
    text = FENCE.sub('', page.read_text())  # code is not prose: no links there
    return [m.group(1) for m in LINK.finditer(text)]


@pytest.mark.parametrize('page', PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    relative = [link for link in _links(page) if not re.match(r'^[a-z]+:', link)]
    assert relative or page != README, 'the README links its docs'
    for link in relative:
        path, _, anchor = link.partition('#')
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f'{page.name}: {link} -> {target} does not exist'
        if anchor and target.suffix == '.md':
            assert anchor in _anchors(target), f'{page.name}: no heading #{anchor} in {path}'


@pytest.mark.parametrize('page', PAGES, ids=[p.name for p in PAGES])
def test_named_paths_exist(page: Path) -> None:
    for path in REPO_PATH.findall(page.read_text()):
        path = path.rstrip('.')
        found = list(ROOT.glob(path)) if '*' in path else [ROOT / path]
        assert found and all(p.exists() for p in found), f'{page.name}: {path} does not exist'


def _resolves(dotted: str) -> bool:
    """Whether ``tsmnet.a.b.c`` is a module, or attributes of the longest module prefix."""
    parts = dotted.split('.')
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


@pytest.mark.parametrize('page', PAGES, ids=[p.name for p in PAGES])
def test_named_modules_exist(page: Path) -> None:
    for tail in MODULE_PATH.findall(page.read_text()):
        dotted = 'tsmnet' + tail
        if dotted not in NOT_MODULES:
            assert _resolves(dotted), f'{page.name}: {dotted} does not exist'


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / link.partition('#')[0]).resolve() for link in _links(README)}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f'{page.name} is not linked from the README'


def test_readme_python_blocks_run_quietly(capfd, caplog) -> None:
    """Each block runs, and prints and logs nothing at INFO or above (MMEngine's
    per-parameter initialisation report, 636 lines for a ResNet-50, is DEBUG)."""
    blocks = [code for lang, code in FENCE.findall(README.read_text()) if lang == 'python']
    assert len(blocks) >= 2  # from Python, and the MMAction2 config line
    caplog.set_level(logging.INFO)
    for code in blocks:
        exec(compile(code, 'README.md', 'exec'), {'__name__': '__readme__'})
        out, err = capfd.readouterr()
        assert not (out + err).strip(), f'a README block printed:\n{(out + err)[:2000]}'
    assert not [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.INFO]


def test_readme_is_short_and_keeps_the_ci_block() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    block = re.search(r'^```bash\n(.*?)^```$', text, re.S | re.M).group(1)  # what .ci/run reads
    comments = [line for line in block.splitlines() if line.startswith('# ')]
    assert [c.split(' (')[0].split(':')[0] for c in comments] == \
        ['# set up', '# the main job', '# the tests']


@pytest.mark.slow
def test_training_page_python_blocks_run(tmp_path, monkeypatch) -> None:
    """docs/training.md's examples run, in order, in one namespace (the later ones use the
    videos the first writes): a VideoDataset with DataLoader workers, uint8 clips normalised
    in the training process, then ``finetune``."""
    monkeypatch.setenv('TSMNET_SHIFT_BACKEND', 'torch')  # no native build: a tiny model
    page = ROOT / 'docs' / 'training.md'
    blocks = [code for lang, code in FENCE.findall(page.read_text()) if lang == 'python']
    assert len(blocks) == 3
    namespace = {'__name__': '__docs__'}
    for code in blocks:
        exec(compile(code, str(page), 'exec'), namespace)
    assert Path(namespace['result'].files['checkpoint']).is_file()


@pytest.mark.slow
def test_saving_page_python_blocks_run(tmp_path, monkeypatch) -> None:
    """docs/saving.md's examples run, in order, in one namespace (the Hub block uses the model
    of the first), writing their files in a temporary folder."""
    pytest.importorskip('huggingface_hub')
    monkeypatch.chdir(tmp_path)
    page = ROOT / 'docs' / 'saving.md'
    blocks = [code for lang, code in FENCE.findall(page.read_text()) if lang == 'python']
    assert len(blocks) == 2
    namespace = {'__name__': '__docs__'}
    for code in blocks:
        exec(compile(code, str(page), 'exec'), namespace)
    assert (tmp_path / 'tiny' / 'config.json').is_file()


@pytest.mark.slow
def test_video_page_python_blocks_run(tmp_path, monkeypatch) -> None:
    """docs/video.md's example (the one loader of predict, stream and serve) runs on a saved
    model and a video written here, in a temporary folder."""
    import tsmnet
    from tsmnet.video import TestProtocol

    monkeypatch.syspath_prepend(str(ROOT / 'tests'))
    from video_files import moving_frames, write_video

    monkeypatch.chdir(tmp_path)
    model = tsmnet.create_model('tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb',
                                depth=18, num_classes=2)
    model.protocol = TestProtocol(num_clips=8, resize_short=37, crop='center', crop_size=32)
    (tmp_path / 'work').mkdir()
    tsmnet.save(model, tmp_path / 'work' / 'checkpoint.pth', classes=['left', 'right'])
    write_video(tmp_path / 'clip.mp4', moving_frames(8, 40, 48))
    page = ROOT / 'docs' / 'video.md'
    blocks = [code for lang, code in FENCE.findall(page.read_text()) if lang == 'python']
    assert len(blocks) == 1
    namespace = {'__name__': '__docs__'}
    exec(compile(blocks[0], str(page), 'exec'), namespace)
    assert namespace['online'].backbone.shift_mode == 'causal'
    assert {label for _, label, _ in namespace['predictor']('clip.mp4').top} == \
        {'left', 'right'}
