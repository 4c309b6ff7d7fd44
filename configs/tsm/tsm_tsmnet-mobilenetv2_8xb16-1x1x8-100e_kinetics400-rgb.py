# TSM MobileNetV2, 8 segments, Kinetics-400, from MMPretrain's ImageNet weights
# (mmcls://mobilenet_v2, converted strictly by tsmnet: 2D keys get the shifts' `.net`).
# Inherits MMAction2 1.2.0's own config from the installed package (mmaction/.mim/configs).
_base_ = (__import__('mmaction').__path__[0] + '/.mim/configs/recognition/tsm/'
          'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb.py')

# `tsmnet.MobileNetV2TSM` builds tsmnet's class from any registry scope; importing tsmnet also
# makes a plain `type='MobileNetV2TSM'` build it (the MMAction2 drop-in). For online (frame by
# frame) inference, train with backbone=dict(shift_mode='causal') and stream with
# tsmnet.TSMStream.
custom_imports = dict(imports=['tsmnet'], allow_failed_imports=False)

model = dict(backbone=dict(type='tsmnet.MobileNetV2TSM'))
