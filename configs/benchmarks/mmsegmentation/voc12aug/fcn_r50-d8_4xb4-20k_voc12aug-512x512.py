# FCN R50-D8, DenseCL backbone, voc12aug-512x512, 20k iterations (mmseg's schedule_20k).
_base_ = [
    '../_base_/fcn_r50-d8_voc12aug-512x512.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
