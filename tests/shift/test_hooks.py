"""Working in place stays invisible: a forward or pre-forward hook (on the wrapped module, a
module inside it, or global) that keeps a reference to a tensor finds what the module
consumed, in both shift placements, in inference and in training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsmnet import ResNetTSM, TemporalShift

T = 4


def _model(shift_place: str) -> ResNetTSM:
    model = ResNetTSM(18, num_segments=T, shift_place=shift_place, pretrained=None)
    model.init_weights()
    return model


def _consumed_by_copy(model: ResNetTSM, name: str, x: torch.Tensor, train: bool
                      ) -> torch.Tensor:
    """What module ``name`` consumes when every shift copies (no in place anywhere)."""
    for m in model.modules():
        if isinstance(m, TemporalShift):
            m.inplace = False
    seen = []
    handle = model.get_submodule(name).register_forward_pre_hook(
        lambda m, args: seen.append(args[0].detach().clone()))
    try:
        model.train(train)(x)
    finally:
        handle.remove()
        for m in model.modules():
            if isinstance(m, TemporalShift):
                m.inplace = True
    return seen[0]


# (shift_place, the hooked module): the shifted conv itself (blockres: the wrapped module),
# the whole wrapped block (block), and a conv inside the wrapped block (block)
SITES = [('blockres', 'layer1.0.conv1.conv.net'), ('block', 'layer1.0.net'),
         ('block', 'layer1.0.net.conv1.conv')]


@pytest.mark.quick_only('block-layer1.0.net-pre-True')
@pytest.mark.parametrize('train', [False, True])
@pytest.mark.parametrize('kind', ['pre', 'forward', 'global'])
@pytest.mark.parametrize('shift_place,name', SITES)
def test_a_hook_keeps_what_the_module_consumed(shift_place, name, kind, train):
    model = _model(shift_place)
    x = torch.randn(2 * T, 3, 32, 32)
    expected = _consumed_by_copy(model, name, x, train)
    target = model.get_submodule(name)
    kept = []
    if kind == 'pre':
        handle = target.register_forward_pre_hook(lambda m, args: kept.append(args[0]))
    elif kind == 'forward':
        handle = target.register_forward_hook(lambda m, args, out: kept.append(args[0]))
    else:
        handle = nn.modules.module.register_module_forward_pre_hook(
            lambda m, args: kept.append(args[0]) if m is target else None)
    try:
        with torch.set_grad_enabled(train):
            model.train(train)(x)
    finally:
        handle.remove()
    assert len(kept) == 1
    assert torch.equal(kept[0], expected)  # read after the forward returned


def test_without_hooks_the_backbone_still_shifts_in_place():
    model = _model('blockres').eval()
    site = model.get_submodule('layer1.0.conv1.conv')
    seen = []

    class Recording(nn.Conv2d):
        reads_input_only = True  # a subclass: trusted to read only by this promise

        def forward(self, v):
            seen.append(v.data_ptr())
            return super().forward(v)

    recording = Recording(64, 64, 3, padding=1, bias=False)
    recording.load_state_dict(site.net.state_dict())
    site.net = recording
    x = torch.randn(2 * T, 3, 32, 32)
    ptrs = []
    block_in = model.get_submodule('layer1.0')
    block_in.register_forward_pre_hook(lambda m, args: ptrs.append(args[0].data_ptr()))
    with torch.no_grad():
        model(x)
    assert seen == ptrs  # the conv ran on the block input itself: no copy was made
