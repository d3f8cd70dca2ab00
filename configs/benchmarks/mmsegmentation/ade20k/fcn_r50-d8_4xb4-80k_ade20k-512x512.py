# FCN R50-D8, DenseCL backbone, ade20k-512x512, 80k iterations (mmseg's schedule_80k).
_base_ = [
    '../_base_/fcn_r50-d8_ade20k-512x512.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
