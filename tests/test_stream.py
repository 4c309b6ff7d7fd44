"""Online TSM: TSMStream equals the offline causal model frame for frame, and stays small."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from tsmnet import MobileNetV2, MobileNetV2TSM, ResNet, ResNetTSM, TemporalShift, TSMStream
from tsmnet.video import FrameTransform, single_view_protocol

SIZE = 32


@pytest.fixture(autouse=True, scope='module')
def _one_thread_no_tf32():
    """Tiny convs run fastest on one thread on the shared CI machine; on CUDA, fp32 means
    fp32 (no TF32 convs). Both restored afterwards."""
    threads, tf32 = torch.get_num_threads(), torch.backends.cudnn.allow_tf32
    torch.set_num_threads(1)
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.set_num_threads(threads)
    torch.backends.cudnn.allow_tf32 = tf32


def causal_model(depth: int = 18, place: str = 'blockres', num_segments: int = 4,
                 **kwargs) -> ResNetTSM:
    """A causal ResNetTSM in eval mode with random BatchNorm statistics (not identities)."""
    model = ResNetTSM(depth, num_segments=num_segments, shift_mode='causal', shift_place=place,
                      pretrained=None, **kwargs)
    randomize_bn(model)
    return model.eval()


def randomize_bn(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.2, 0.2)


def offline(model: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """``[N, T, C, H, W]`` clips through the model at once, as ``[N, T, C', H', W']``."""
    n, t = clips.shape[:2]
    with torch.no_grad():
        out = model(clips.flatten(0, 1))
    return out.reshape(n, t, *out.shape[1:])


def streamed(stream: TSMStream, clips: torch.Tensor) -> torch.Tensor:
    """The same clips one frame (of every stream) at a time."""
    return torch.stack([stream.step(clips[:, t]) for t in range(clips.shape[1])], dim=1)


@pytest.mark.parametrize('streams', [1, 3])
@pytest.mark.parametrize('place', ['blockres', 'block'])
@pytest.mark.parametrize('depth', [18, 50])
def test_stream_equals_offline(depth, place, streams, device):
    t = 4
    model = causal_model(depth, place, t).to(device)
    clips = torch.randn(streams, t, 3, SIZE, SIZE, device=device)
    stream = TSMStream(model)
    expected = offline(model, clips)
    got = streamed(stream, clips)
    assert stream.num_sites == (16 if depth == 50 else 8)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # the past matters: without the buffers (a fresh stream per frame) frames t >= 1 differ
    fresh = []
    for i in range(t):
        stream.reset()
        fresh.append(stream.step(clips[:, i]))
    fresh = torch.stack(fresh, dim=1)
    torch.testing.assert_close(fresh[:, 0], expected[:, 0], atol=1e-5, rtol=0)
    assert (fresh[:, 1:] - expected[:, 1:]).abs().amax() > 1e-3


def test_stream_runs_past_num_segments():
    """num_segments only sizes offline clips: a stream of 6 frames equals a 6-frame clip."""
    model = causal_model(18, num_segments=2)
    long_model = causal_model(18, num_segments=6)
    long_model.load_state_dict(model.state_dict())
    clips = torch.randn(2, 6, 3, SIZE, SIZE)
    torch.testing.assert_close(streamed(TSMStream(model), clips), offline(long_model, clips),
                               atol=1e-5, rtol=0)


def test_plain_resnet_streams_per_frame():
    model = ResNet(18).eval()
    frames = torch.randn(2, 3, SIZE, SIZE)
    stream = TSMStream(model)
    assert stream.num_sites == 0
    with torch.no_grad():
        want = model(frames)
        torch.testing.assert_close(stream.step(frames), want, atol=1e-5, rtol=0)  # folded
        unfolded = TSMStream(model, fold_batch_norms=False).step(frames)
        torch.testing.assert_close(unfolded, want, atol=1e-6, rtol=0)


def test_several_out_indices():
    model = causal_model(18, out_indices=(1, 3))
    clips = torch.randn(2, 4, 3, SIZE, SIZE)
    with torch.no_grad():
        want = model(clips.flatten(0, 1))
    stream = TSMStream(model)
    steps = [stream.step(clips[:, t]) for t in range(4)]
    for j, w in enumerate(want):
        got = torch.stack([s[j] for s in steps], dim=1)
        torch.testing.assert_close(got, w.reshape(2, 4, *w.shape[1:]), atol=1e-5, rtol=0)


@pytest.fixture(scope='module')
def r18():
    torch.manual_seed(1)
    return causal_model(18, 'blockres', 4)


def test_reset_all_restarts_every_stream(r18):
    a, b = torch.randn(2, 4, 3, SIZE, SIZE), torch.randn(2, 4, 3, SIZE, SIZE)
    stream = TSMStream(r18)
    streamed(stream, a)
    stream.reset()
    torch.testing.assert_close(streamed(stream, b), offline(r18, b), atol=1e-5, rtol=0)


def test_reset_one_stream_leaves_the_others(r18):
    """Stream 1 restarts on a new clip after 2 frames; streams 0 and 2 go on undisturbed."""
    t, k = 4, 2
    clips = torch.randn(3, t, 3, SIZE, SIZE)
    restart = torch.randn(1, t, 3, SIZE, SIZE)
    expected = offline(r18, clips)
    expected_restart = offline(r18, restart)
    stream = TSMStream(r18)
    for i in range(k):
        stream.step(clips[:, i])
    stream.reset(1)
    for i in range(k, t):
        frames = clips[:, i].clone()
        frames[1] = restart[0, i - k]
        out = stream.step(frames)
        torch.testing.assert_close(out[[0, 2]], expected[[0, 2], i], atol=1e-5, rtol=0)
        torch.testing.assert_close(out[1], expected_restart[0, i - k], atol=1e-5, rtol=0)
    stream.reset([0, -1])  # a sequence of indices, negative ones included
    for b in stream.buffers:
        assert b[[0, 2]].abs().sum() == 0 and b[1].abs().sum() > 0


def test_reset_refuses_bad_indices(r18):
    stream = TSMStream(r18)
    stream.reset(0)  # before the first step: nothing to clear, not an error
    stream.step(torch.randn(2, 3, SIZE, SIZE))
    with pytest.raises(IndexError, match='out of range for 2 streams'):
        stream.reset(2)
    with pytest.raises(TypeError, match='index must be an int'):
        stream.reset(1.0)


def test_buffers_are_allocated_once_and_reused(r18):
    stream = TSMStream(r18)
    assert stream.buffers == () and stream.num_streams is None
    clips = torch.randn(2, 6, 3, SIZE, SIZE)
    stream.step(clips[:, 0])
    ptrs = [b.data_ptr() for b in stream.buffers]
    shapes = [tuple(b.shape) for b in stream.buffers]
    assert len(ptrs) == stream.num_sites == 8
    # one fold (C // 8 channels) of each site's input, for each of the N = 2 streams
    assert shapes[0] == (2, 64 // 8, SIZE // 4, SIZE // 4)
    assert shapes[-1] == (2, 512 // 8, SIZE // 32, SIZE // 32)
    for t in range(1, 6):
        stream.step(clips[:, t])
        if t == 3:
            stream.reset()
        stream.reset(0)
        assert [b.data_ptr() for b in stream.buffers] == ptrs
        assert [tuple(b.shape) for b in stream.buffers] == shapes


def test_frames_must_keep_their_shape(r18):
    stream = TSMStream(r18)
    stream.step(torch.randn(2, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match='shape of the first step'):
        stream.step(torch.randn(3, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match='shape of the first step'):
        stream.step(torch.randn(2, 3, 2 * SIZE, 2 * SIZE))
    with pytest.raises(ValueError, match='in_channels=3'):
        stream.step(torch.randn(2, 4, SIZE, SIZE))
    with pytest.raises(ValueError, match=r'\[N, C, H, W\]'):
        stream.step(torch.randn(2, 1, 3, SIZE, SIZE))
    with pytest.raises(TypeError, match='floating-point'):
        stream.step(torch.zeros(2, 3, SIZE, SIZE, dtype=torch.uint8))


def test_model_is_not_modified_and_weights_are_shared():
    model = causal_model(18, 'block', 4).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = dict(model.named_modules())
    clips = torch.randn(2, 4, 3, SIZE, SIZE)
    stream = TSMStream(model)
    got = streamed(stream, clips)
    # a model in training mode is streamed in eval mode, and its BN statistics stay put
    assert model.training and all(m.training for m in model.modules())
    assert dict(model.named_modules()) == modules
    assert all(isinstance(modules[f'layer{i}.0'], TemporalShift) for i in range(1, 5))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(got, offline(model.eval(), clips), atol=1e-5, rtol=0)
    # weights loaded into the model later are what the stream computes with
    model.load_state_dict(causal_model(18, 'block', 4).state_dict())
    stream.reset()
    now = streamed(stream, clips)
    torch.testing.assert_close(now, offline(model, clips), atol=1e-5, rtol=0)
    assert (now - got).abs().amax() > 1e-3


def test_grad_modes_and_dtype(r18, device):
    model = causal_model(18, 'blockres', 3).to(device, torch.float64)
    clips = torch.randn(2, 3, 3, SIZE, SIZE, device=device, dtype=torch.float64)
    expected = offline(model, clips)
    stream = TSMStream(model)
    with torch.inference_mode():  # the first step allocates under inference mode...
        first = stream.step(clips[:, 0])
    assert all(b.dtype == torch.float64 and b.device.type == device.type
               for b in stream.buffers)
    second = stream.step(clips[:, 1])  # ...and later steps run with autograd enabled
    assert not second.requires_grad  # the stream never builds a graph
    with torch.no_grad():
        third = stream.step(clips[:, 2])
    got = torch.stack([first, second, third], dim=1)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


def test_buffers_follow_a_dtype_change_only_after_a_new_stream(r18):
    model = causal_model(18, 'blockres', 2)
    stream = TSMStream(model)
    stream.step(torch.randn(1, 3, SIZE, SIZE))
    model.double()
    with pytest.raises(ValueError, match='changed dtype or device after the first step'):
        stream.step(torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64))


@pytest.mark.parametrize('kwargs, why', [
    (dict(shift_mode='bidirectional'), r"shift_mode='bidirectional': frame t reads channels "
                                       r'of frame t \+ 1'),
    (dict(temporal_pool=True), 'pools time'),
    (dict(non_local=((0, 0), (1, 0), (0, 0), (0, 0)),
          non_local_cfg=dict(mode='embedded_gaussian')), 'non-local block'),
])
def test_refuses_models_that_need_the_future(kwargs, why):
    kwargs = dict(dict(shift_mode='causal'), **kwargs)
    model = ResNetTSM(18, num_segments=4, pretrained=None, **kwargs)
    with pytest.raises(ValueError, match=why):
        TSMStream(model)


def test_refuses_default_model_with_advice():
    with pytest.raises(ValueError, match="Build \\(and train\\) the model with "
                                         "shift_mode='causal'"):
        TSMStream(ResNetTSM(18, pretrained=None))


class _TwoStream(ResNetTSM):
    def forward(self, x):
        return super().forward(x) * 2


def test_refuses_what_is_not_a_resnet_tsm():
    with pytest.raises(TypeError, match='needs a tsmnet ResNetTSM'):
        TSMStream(nn.Sequential(nn.Conv2d(3, 8, 3)))
    with pytest.raises(TypeError, match='overrides forward'):
        TSMStream(_TwoStream(18, shift_mode='causal', pretrained=None))


@pytest.mark.slow
def test_onnx_step_reproduces_the_stream(tmp_path, r18):
    ort = pytest.importorskip('onnxruntime')
    path = tmp_path / 'step.onnx'
    stream = TSMStream(r18)
    inputs, outputs = stream.export_onnx(path, torch.zeros(2, 3, SIZE, SIZE))
    assert inputs[0] == 'frames' and outputs[0] == 'features'
    assert len(inputs) == len(outputs) == 1 + stream.num_sites
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == inputs
    for n in (3, 1):  # any number of streams, whatever N the export saw
        clips = torch.randn(n, 5, 3, SIZE, SIZE)
        buffers = [b.numpy() for b in stream.zero_buffers(clips[:, 0])]
        stream = TSMStream(r18)
        for t in range(5):
            want = stream.step(clips[:, t])
            got = session.run(None, dict(frames=clips[:, t].numpy(),
                                         **dict(zip(inputs[1:], buffers))))
            np.testing.assert_allclose(got[0], want.numpy(), atol=1e-5, rtol=0)
            for new, kept in zip(got[1:], stream.buffers):
                np.testing.assert_allclose(new, kept.numpy(), atol=1e-5, rtol=0)
            buffers = got[1:]


def test_step_module_is_a_pure_function(r18):
    stream = TSMStream(r18)
    step = stream.step_module()
    clips = torch.randn(2, 3, 3, SIZE, SIZE)
    buffers = stream.zero_buffers(clips[:, 0])
    assert stream.buffers == ()  # the probe pass did not start this stream
    with torch.no_grad():
        for t in range(3):
            out = step(clips[:, t], *buffers)
            torch.testing.assert_close(out[0], stream.step(clips[:, t]), atol=1e-6, rtol=0)
            buffers = list(out[1:])
        again = step(clips[:, 2], *buffers)
    assert not torch.equal(again[0], out[0])  # the same frame with another past
    with pytest.raises(ValueError, match='one buffer per shift site'):
        step(clips[:, 0], *buffers[:-1])


def test_cli_p90_is_never_below_the_median(tmp_path, capsys):
    """With two timed frames the p90 latency lies between the median and the slowest frame
    (it was the fastest frame's once: an index rounded down)."""
    from tsmnet.cli import main

    out = tmp_path / 'out.json'
    assert main(['stream', '--backbone', 'resnet18', '--size', str(SIZE), '--frames', '3',
                 '--quiet', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    latencies = sorted(r['ms'] for r in result['frames'][1:])  # the first one is not timed
    assert len(latencies) == 2
    assert latencies[-1] >= result['p90_ms'] >= result['median_ms'] >= latencies[0]


def test_cli_streams_a_generated_clip(tmp_path, capsys):
    from tsmnet.cli import main
    from tsmnet.commands.stream import generated_clip

    out = tmp_path / 'out.json'
    assert main(['stream', '--backbone', 'resnet18', '--size', str(SIZE), '--frames', '3',
                 '--shift-place', 'block', '--json', str(out)]) == 0
    assert capsys.readouterr().out.count(' ms  top feature ') == 3
    result = json.loads(out.read_text())
    torch.manual_seed(0)  # the command's default --seed
    model = ResNetTSM(18, num_segments=3, shift_mode='causal', shift_place='block',
                      pretrained=None).eval()
    clip = torch.stack([FrameTransform(single_view_protocol(SIZE))(f)
                        for f in generated_clip(3, SIZE)])
    with torch.no_grad():
        pooled = model(clip).mean(dim=(2, 3))
    assert [r['top_feature'] for r in result['frames']] == pooled.argmax(-1).tolist()


def test_cli_refuses_a_missing_file(tmp_path, capsys):
    from tsmnet.cli import main

    assert main(['stream', str(tmp_path / 'nope.mp4'), '--backbone', 'resnet18', '--size',
                 str(SIZE)]) == 2
    assert capsys.readouterr().err == \
        f"tsmnet stream: error: video '{tmp_path / 'nope.mp4'}': no such file\n"


def test_channels_last_model_streams_exactly(r18):
    model = causal_model(18, 'blockres', 3).to(memory_format=torch.channels_last)
    clips = torch.randn(2, 3, 3, SIZE, SIZE)
    frames = clips.flatten(0, 1).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = model(frames).reshape(2, 3, 512, 1, 1)
    stream = TSMStream(model)
    got = torch.stack([stream.step(clips[:, t].contiguous(memory_format=torch.channels_last))
                       for t in range(3)], dim=1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


# -- MobileNetV2-TSM: the network of TSM's online demo ---------------------------------------

def causal_mobilenet(num_segments: int = 4, **kwargs) -> MobileNetV2TSM:
    """A causal MobileNetV2TSM in eval mode with random BatchNorm statistics."""
    model = MobileNetV2TSM(num_segments=num_segments, shift_mode='causal', **kwargs)
    model.init_weights()
    randomize_bn(model)
    return model.eval()


@pytest.mark.parametrize('streams', [1, 3])
def test_mobilenet_v2_tsm_stream_equals_offline(streams):
    model = causal_mobilenet(4, out_indices=(2, 7))
    stream = TSMStream(model)
    assert stream.num_sites == 10
    assert stream.sites[0] == 'layer2.1.conv.0' and stream.sites[-1] == 'layer6.2.conv.0'
    clips = torch.randn(streams, 4, 3, SIZE, SIZE)
    with torch.no_grad():
        want = model(clips.flatten(0, 1))
    got = [stream.step(clips[:, t]) for t in range(4)]
    for j in range(2):
        online = torch.stack([g[j] for g in got], dim=1).flatten(0, 1)
        torch.testing.assert_close(online, want[j].reshape(streams, 4, *want[j].shape[1:])
                                   .flatten(0, 1), atol=1e-5, rtol=0)
    # the fold of a site is C // shift_div channels of its input (24 at layer2.1)
    assert stream.buffers[0].shape == (streams, 3, 8, 8)


def test_mobilenet_v2_plain_streams_and_bidirectional_is_refused():
    plain = MobileNetV2().eval()
    frames = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        want = plain(frames)
        unfolded = TSMStream(plain, fold_batch_norms=False).step(frames)
        torch.testing.assert_close(unfolded, want, atol=0, rtol=0)
        folded = TSMStream(plain).step(frames)  # random-init features are tiny: relative
        assert (folded - want).abs().amax() <= 1e-5 * want.abs().amax()
    why = r"layer2\.1\.conv\.0 \(TemporalShift\) has shift_mode='bidirectional'"
    with pytest.raises(ValueError, match=why):
        TSMStream(MobileNetV2TSM())
    with pytest.raises(ValueError, match='in_channels=3'):
        TSMStream(causal_mobilenet()).step(torch.randn(1, 4, SIZE, SIZE))


@pytest.mark.slow
def test_mobilenet_v2_tsm_onnx_step_reproduces_the_stream(tmp_path):
    ort = pytest.importorskip('onnxruntime')
    model = causal_mobilenet(4)
    stream = TSMStream(model)
    path = tmp_path / 'mobilenet_step.onnx'
    inputs, outputs = stream.export_onnx(path, torch.zeros(1, 3, SIZE, SIZE))
    assert inputs == ['frames'] + [f'buffer_{i}' for i in range(10)]
    assert outputs == ['features'] + [f'new_buffer_{i}' for i in range(10)]
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    clips = torch.randn(2, 6, 3, SIZE, SIZE)
    buffers = [b.numpy() for b in stream.zero_buffers(clips[:, 0])]
    for t in range(6):
        want = stream.step(clips[:, t])
        got = session.run(None, dict(frames=clips[:, t].numpy(), **dict(zip(inputs[1:], buffers))))
        np.testing.assert_allclose(got[0], want.numpy(), atol=1e-4, rtol=0)
        buffers = got[1:]


def test_cli_streams_mobilenet_v2(capsys, tmp_path):
    from tsmnet.cli import main
    from tsmnet.commands.stream import generated_clip

    out = tmp_path / 'out.json'
    assert main(['stream', '--backbone', 'mobilenetv2', '--size', str(SIZE), '--frames', '3',
                 '--json', str(out)]) == 0
    assert 'causal MobileNetV2-TSM (10 shift sites)' in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result['backbone'] == 'mobilenetv2'
    torch.manual_seed(0)  # the command's default --seed
    model = MobileNetV2TSM(num_segments=3, shift_mode='causal').eval()
    clip = torch.stack([FrameTransform(single_view_protocol(SIZE))(f)
                        for f in generated_clip(3, SIZE)])
    with torch.no_grad():
        pooled = model(clip).mean(dim=(2, 3))
    assert [r['top_feature'] for r in result['frames']] == pooled.argmax(-1).tolist()


@pytest.mark.parametrize('backbone', ['resnet', 'mobilenet_v2'])
def test_folded_and_unfolded_streams_equal_offline(backbone):
    from tsmnet.fuse import LiveFoldedConv
    if backbone == 'resnet':
        model = causal_model(18, 'blockres', 4)
    else:
        model = MobileNetV2TSM(num_segments=4, shift_mode='causal', pretrained=None)
        randomize_bn(model)
        model.eval()
    clips = torch.randn(2, 4, 3, SIZE, SIZE)
    expected = offline(model, clips)
    folded, unfolded = TSMStream(model), TSMStream(model, fold_batch_norms=False)
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, LiveFoldedConv) for m in folded._net.modules()) == norms
    assert not any(isinstance(m, LiveFoldedConv) for m in unfolded._net.modules())
    torch.testing.assert_close(streamed(folded, clips), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(streamed(unfolded, clips), expected, atol=1e-5, rtol=0)
    # a batch-norm statistic written in place is seen at the next step
    with torch.no_grad():
        next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d)).running_mean.add_(1)
    folded.reset()
    torch.testing.assert_close(streamed(folded, clips), offline(model, clips), atol=1e-5,
                               rtol=0)


def test_folded_stream_calls_the_model_hooks():
    model = causal_model(18, 'blockres', 2)
    calls = []
    model.layer1[0].conv1.conv.net.register_forward_hook(lambda m, i, o: calls.append('conv'))
    model.layer1[0].conv1.bn.register_forward_hook(lambda m, i, o: calls.append('bn'))
    TSMStream(model).step(torch.randn(1, 3, SIZE, SIZE))
    assert calls == ['conv', 'bn']


def test_fold_batch_norms_must_be_a_bool(r18):
    with pytest.raises(TypeError, match='fold_batch_norms must be a bool'):
        TSMStream(r18, fold_batch_norms='yes')
