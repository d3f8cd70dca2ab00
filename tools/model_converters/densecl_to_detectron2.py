# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a detectron2 ResNet ``.pkl``.

    python tools/model_converters/densecl_to_detectron2.py SRC DST.pkl

Train detectron2 with ``MODEL.WEIGHTS DST.pkl MODEL.PIXEL_MEAN
"[123.675,116.280,103.530]" MODEL.PIXEL_STD "[58.395,57.120,57.375]"
INPUT.FORMAT RGB MODEL.RESNETS.STRIDE_IN_1X1 False``.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from densecl_plugin.converters import convert_to_detectron2  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='pre-training or extracted checkpoint')
    parser.add_argument('dst', help='output file (.pkl)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = convert_to_detectron2(args.src, args.dst)
    print(f'{args.dst}: {len(model)} detectron2 arrays '
          '(matching_heuristics=True)')


if __name__ == '__main__':
    main()
