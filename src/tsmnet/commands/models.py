"""``tsmnet models [FILTER]``: the zoo, one model a line: name, dataset, frames, published top-1.

Examples::

    tsmnet models
    tsmnet models r50            # names containing r50
    tsmnet models '*sthv2*' --json -

Every name is what ``--model`` takes (``tsmnet predict``, ``export``, ``finetune``) and what
``tsmnet.create_model`` builds; ``tsmnet info NAME`` says more about one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .errors import CommandError
from .options import add_json, write_json


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'models', help='list the zoo: names, datasets and published top-1',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('filter', nargs='?', default='',
                        help="a shell pattern ('*r50*') or a word the names contain "
                             '(default: all)')
    add_json(parser, 'the list')
    parser.set_defaults(func=run)


def rows(filter: str = '') -> list[dict[str, Any]]:
    """One dict per zoo model matching ``filter``: name, backbone, dataset, classes, frames,
    top-1 and top-5 (%)."""
    from tsmnet.weights.zoo import ENTRIES, list_weights

    found = []
    for name in list_weights(filter):
        entry = ENTRIES[name]
        found.append({'name': name, 'backbone': entry.backbone, 'dataset': entry.dataset_name,
                      'classes': entry.num_classes, 'frames': entry.num_segments,
                      'top1': entry.top1, 'top5': entry.top5})
    return found


def format_rows(found: list[dict[str, Any]]) -> str:
    width = max(len(r['name']) for r in found)
    data = max(len(r['dataset']) for r in found)
    lines = [f'{"name".ljust(width)}  {"dataset".ljust(data)}  frames  top-1']
    lines += [f'{r["name"].ljust(width)}  {r["dataset"].ljust(data)}  {r["frames"]:6d}  '
              f'{r["top1"]:5.2f}' for r in found]
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    found = rows(args.filter)
    if not found:
        raise CommandError(f'no zoo model matches {args.filter!r} (tsmnet models lists them '
                           f'all)')
    if args.json_path != '-':
        print(format_rows(found))
    write_json(args.json_path, json.dumps(found, indent=1))
    return 0
