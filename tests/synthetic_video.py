"""A tiny video dataset on disk, in MMAction2's rawframes layout, and a config that trains on it.

Two classes told apart by colour (reddish / bluish clips with noise), 32x32 jpg frames, so a
ResNet-18-TSM learns it in a few iterations. The config is an MMAction2 config file:
``Recognizer2D`` + ``TSMHead`` + ``ActionDataPreprocessor`` from MMAction2, ``RawframeDataset``
read by MMAction2's own pipeline, and ``type='ResNetTSM'`` made tsmnet's by ``custom_imports``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIZE = 32
NUM_SEGMENTS = 4


def write_rawframes(root: Path, num_videos: int = 8, num_frames: int = 8,
                    seed: int = 0) -> Path:
    """Write ``root/vidNN/img_00001.jpg...`` and ``root/ann.txt`` (``dir frames label``).

    Returns:
        The annotation file.
    """
    rng = np.random.default_rng(seed)
    lines = []
    for v in range(num_videos):
        label = v % 2
        folder = root / f'vid{v:02d}'
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(num_frames):
            frame = rng.integers(0, 96, size=(SIZE, SIZE, 3)).astype(np.int32)
            frame[..., 2 if label == 0 else 0] += 150  # BGR: red for 0, blue for 1
            cv2.imwrite(str(folder / f'img_{f + 1:05d}.jpg'), frame.clip(0, 255).astype(np.uint8))
        lines.append(f'vid{v:02d} {num_frames} {label}')
    ann = root / 'ann.txt'
    ann.write_text('\n'.join(lines) + '\n')
    return ann


def write_config(path: Path, data_root: Path, ann_file: Path, *, max_epochs: int = 4,
                 batch_size: int = 4, extra: str = '') -> Path:
    """Write an MMAction2 training config for the synthetic dataset to ``path``."""
    path.write_text(f'''
default_scope = 'mmaction'
custom_imports = dict(imports=['tsmnet'], allow_failed_imports=False)
model = dict(
    type='Recognizer2D',
    backbone=dict(type='ResNetTSM', depth=18, num_segments={NUM_SEGMENTS}, pretrained=None,
                  norm_eval=False, shift_div=8),
    cls_head=dict(type='TSMHead', num_classes=2, in_channels=512,
                  num_segments={NUM_SEGMENTS}, spatial_type='avg',
                  consensus=dict(type='AvgConsensus', dim=1), dropout_ratio=0.0,
                  init_std=0.01, is_shift=True, average_clips='prob'),
    data_preprocessor=dict(type='ActionDataPreprocessor', mean=[127.5, 127.5, 127.5],
                           std=[64.0, 64.0, 64.0], format_shape='NCHW'))
train_pipeline = [
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips={NUM_SEGMENTS}),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=({SIZE}, {SIZE}), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips={NUM_SEGMENTS},
         test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=({SIZE}, {SIZE}), keep_ratio=False),
    dict(type='FormatShape', input_format='NCHW'),
    dict(type='PackActionInputs'),
]
dataset = dict(type='RawframeDataset', ann_file={str(ann_file)!r},
               data_prefix=dict(img={str(data_root)!r}), filename_tmpl='img_{{:05}}.jpg')
train_dataloader = dict(batch_size={batch_size}, num_workers=0,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(dataset, pipeline=train_pipeline))
val_dataloader = dict(batch_size={batch_size}, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(dataset, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs={max_epochs}, val_interval={max_epochs})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval={max_epochs}),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
log_level = 'WARNING'
{extra}
''')
    return path
