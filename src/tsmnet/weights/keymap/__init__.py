"""Pure key mappings: checkpoint layouts of other projects -> tsmnet / MMAction2 keys.

One module per backbone family (:mod:`tsmnet.weights.keymap.resnet`), plus what they share
(:mod:`tsmnet.weights.keymap.common`). Nothing here reads a file or imports a model (it may
import archs only), so checkpoint loading (:mod:`tsmnet.weights.checkpoint`) builds on it and
the models build on checkpoint loading.
"""

from .common import (
    MODULE_PREFIX,
    StateDict,
    fill_num_batches_tracked,
    rewrap_state_dict,
    strip_data_parallel,
    strip_prefix,
    unwrap_key,
    wrap_state_dict,
)
from .resnet import (
    BACKBONE_PREFIX,
    CONV1_KEY,
    CONVERTERS,
    HEAD_PREFIX,
    SOURCE_FORMATS,
    SourceFormat,
    detect_format,
    fold_conv_bias_into_bn,
    infer_arch,
    inflate_conv1_weight,
    inflate_in_channels,
    mmaction_to_mmaction,
    split_recognizer,
    timm_to_resnet,
    torchvision_to_resnet,
    tsm_to_mmaction,
)

__all__ = ['BACKBONE_PREFIX', 'CONV1_KEY', 'CONVERTERS', 'HEAD_PREFIX', 'MODULE_PREFIX',
           'SOURCE_FORMATS', 'SourceFormat', 'StateDict', 'detect_format',
           'fill_num_batches_tracked', 'fold_conv_bias_into_bn', 'infer_arch',
           'inflate_conv1_weight', 'inflate_in_channels', 'mmaction_to_mmaction',
           'rewrap_state_dict', 'split_recognizer', 'strip_data_parallel', 'strip_prefix',
           'timm_to_resnet', 'torchvision_to_resnet', 'tsm_to_mmaction', 'unwrap_key',
           'wrap_state_dict']
