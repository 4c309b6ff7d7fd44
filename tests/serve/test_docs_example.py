"""docs/serve.md's Python client runs against a real server and prints one top label per
frame."""

from __future__ import annotations

import ast
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'serve.md'


def test_the_python_client_of_the_docs_runs(server, capsys):
    blocks = re.findall(r'^```python\n(.*?)^```$', DOC.read_text(), re.S | re.M)
    assert len(blocks) == 1
    code = blocks[0].replace('ws://127.0.0.1:8000', server.ws_url)
    exec(compile(code, str(DOC), 'exec'), {'__name__': '__docs__'})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 16
    first = ast.literal_eval(lines[0])
    assert set(first) == {'index', 'label', 'prob'} and first['label'].startswith('action ')
