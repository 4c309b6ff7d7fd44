"""torch.hub entry points: one per tsmnet zoo name (``tsmnet.list_models()``).

    model = torch.hub.load('path/to/tsmnet', NAME, source='local', pretrained=True)

Each entry is :func:`tsmnet.create_model` for its name, with the same keyword arguments
(``pretrained``, ``num_classes``, backbone and head options).
"""

import sys as _sys
from pathlib import Path as _Path

dependencies = ['torch', 'mmengine', 'mmcv']

try:
    import tsmnet  # noqa: E402
except ImportError:  # a checkout that is not installed: its sources are under src/
    _sys.path.insert(0, str(_Path(__file__).resolve().parent / 'src'))
    import tsmnet  # noqa: E402
from tsmnet.weights import zoo as _zoo  # noqa: E402


def _entry(name: str):
    entry = _zoo.weights(name)
    def build(pretrained=False, **kwargs):
        return tsmnet.create_model(name, pretrained=pretrained, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f'``tsmnet.create_model({name!r}, pretrained=False, **kwargs)``: '
                     f'{entry.backbone} on {entry.dataset_name}, top-1 {entry.top1}')
    return build


# torch.hub looks entries up with getattr, so a zoo name need not be a Python identifier
globals().update({name: _entry(name) for name in tsmnet.list_models()})
