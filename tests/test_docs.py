"""The README and docs/: every relative link resolves (files and #anchors), the README's Python
code runs, and the README stays short with the block that .ci/run reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
PAGES = [README, *sorted((ROOT / 'docs').glob('*.md'))]
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^```(\w*)\n(.*?)^```$', re.S | re.M)


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


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / link.partition('#')[0]).resolve() for link in _links(README)}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f'{page.name} is not linked from the README'


def test_readme_python_blocks_run() -> None:
    blocks = [code for lang, code in FENCE.findall(README.read_text()) if lang == 'python']
    assert len(blocks) >= 2  # from Python, and the MMAction2 config line
    for code in blocks:
        exec(compile(code, 'README.md', 'exec'), {'__name__': '__readme__'})


def test_readme_is_short_and_keeps_the_ci_block() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    block = re.search(r'^```bash\n(.*?)^```$', text, re.S | re.M).group(1)  # what .ci/run reads
    comments = [line for line in block.splitlines() if line.startswith('# ')]
    assert [c.split(' (')[0].split(':')[0] for c in comments] == \
        ['# set up', '# the main job', '# the tests']
