# FCN R50-D8 with a DenseCL backbone; schedule: mmseg's, see `_base_`.
_base_ = [
    '../_base_/fcn_r50-d8_cityscapes-769x769.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
