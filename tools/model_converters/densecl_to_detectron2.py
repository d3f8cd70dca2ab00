# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a detectron2 ResNet ``.pkl``.

    python tools/model_converters/densecl_to_detectron2.py SRC DST.pkl

Train detectron2 with ``MODEL.WEIGHTS DST.pkl MODEL.PIXEL_MEAN
"[123.675,116.280,103.530]" MODEL.PIXEL_STD "[58.395,57.120,57.375]"
INPUT.FORMAT RGB MODEL.RESNETS.STRIDE_IN_1X1 False``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from densecl_plugin.converters.cli import converter_main  # noqa: E402

if __name__ == '__main__':
    converter_main('densecl_to_detectron2')
