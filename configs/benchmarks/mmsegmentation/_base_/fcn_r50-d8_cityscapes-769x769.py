# FCN R50-D8 with a DenseCL backbone; schedule: mmseg's, see `_base_`.
# 4 GPUs x 2.
_base_ = [
    './models/fcn_r50-d8.py', 'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py'
]
crop_size = (769, 769)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(align_corners=True),
    auxiliary_head=dict(align_corners=True),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(513, 513)))
