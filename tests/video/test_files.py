"""``find_videos``: files, folders (recursive, by extension), glob patterns and ``@list`` files
expand in order, each path once; a missing file stays (its run reports it), an empty folder,
pattern or list is an error that names it."""

from __future__ import annotations

import os

import pytest

from tsmnet.video import VIDEO_EXTENSIONS, find_videos


@pytest.fixture()
def tree(tmp_path, monkeypatch):
    for name in ('a/1.mp4', 'a/b/2.MKV', 'a/b/notes.txt', 'a/c/3.avi', 'top.webm', 'x.txt'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b'')
    (tmp_path / 'empty').mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_folders_are_searched_recursively_for_video_extensions(tree):
    assert find_videos(['a']) == [os.path.join('a', p) for p in ('1.mp4', 'b/2.MKV', 'c/3.avi')]
    assert '.mp4' in VIDEO_EXTENSIONS and '.txt' not in VIDEO_EXTENSIONS
    assert find_videos(['a'], extensions=['avi']) == ['a/c/3.avi']


def test_files_patterns_and_lists_keep_their_order_and_drop_repeats(tree):
    (tree / 'list.txt').write_text('# clips to score\ntop.webm\n\n  a/c/3.avi  \nmissing.mp4\n')
    got = find_videos(['x.txt', '@list.txt', 'a/**/*.mp4', 'top.webm', 'a/c'])
    # a file named explicitly is taken whatever its extension; a missing one stays
    assert got == ['x.txt', 'top.webm', 'a/c/3.avi', 'missing.mp4', 'a/1.mp4']


def test_a_pattern_matching_folders_expands_them(tree):
    assert find_videos(['a/?']) == ['a/b/2.MKV', 'a/c/3.avi']


def test_lists_can_name_folders_and_other_lists(tree):
    (tree / 'inner.txt').write_text('a/c\n')
    (tree / 'outer.txt').write_text('@inner.txt\ntop.webm\n')
    assert find_videos(['@outer.txt']) == ['a/c/3.avi', 'top.webm']
    (tree / 'loop.txt').write_text('@loop.txt\n')
    with pytest.raises(ValueError, match="list file 'loop.txt' lists itself"):
        find_videos(['@loop.txt'])


@pytest.mark.parametrize('items, message', [
    (['empty'], "folder 'empty' holds no video"),
    (['nothing/*.mp4'], "pattern 'nothing/\\*.mp4' matches no file"),
    (['@nowhere.txt'], "list file 'nowhere.txt' cannot be read"),
    (['@blank.txt'], "list file 'blank.txt' lists no video"),
    ([], 'no video named'),
])
def test_what_names_no_video_is_an_error(tree, items, message):
    (tree / 'blank.txt').write_text('\n# nothing\n')
    with pytest.raises(ValueError, match=message):
        find_videos(items)
