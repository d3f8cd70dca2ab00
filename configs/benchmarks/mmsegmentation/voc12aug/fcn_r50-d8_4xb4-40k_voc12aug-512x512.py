# FCN R50-D8, DenseCL backbone, voc12aug-512x512, 40k iterations (mmseg's schedule_40k).
_base_ = [
    '../_base_/fcn_r50-d8_voc12aug-512x512.py',
    'mmseg::_base_/schedules/schedule_40k.py'
]
