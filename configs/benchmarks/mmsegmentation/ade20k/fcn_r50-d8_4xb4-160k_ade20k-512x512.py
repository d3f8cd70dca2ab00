# FCN R50-D8, DenseCL backbone, ade20k-512x512, 160k iterations (mmseg's schedule_160k).
_base_ = [
    '../_base_/fcn_r50-d8_ade20k-512x512.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
