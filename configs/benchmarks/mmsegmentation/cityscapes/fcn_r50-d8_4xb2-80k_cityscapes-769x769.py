# FCN R50-D8, DenseCL backbone, cityscapes-769x769, 80k iterations (mmseg's schedule_80k).
_base_ = [
    '../_base_/fcn_r50-d8_cityscapes-769x769.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
