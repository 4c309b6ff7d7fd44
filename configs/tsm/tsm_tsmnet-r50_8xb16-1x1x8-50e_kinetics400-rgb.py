# TSM ResNet-50, 8 segments, Kinetics-400.
# Inherits MMAction2 1.2.0's own config from the installed package (mmaction/.mim/configs).
# (MMEngine's `mmaction::` prefix means the same, but MMEngine 0.10.7 resolves it with
# pkg_resources, which setuptools >= 81 no longer ships.)
_base_ = (__import__('mmaction').__path__[0] + '/.mim/configs/'
          'recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py')

# `tsmnet.ResNetTSM` builds tsmnet's class from any registry scope; importing tsmnet also makes
# a plain `type='ResNetTSM'` build it (the MMAction2 drop-in).
custom_imports = dict(imports=['tsmnet'], allow_failed_imports=False)

model = dict(backbone=dict(type='tsmnet.ResNetTSM'))
