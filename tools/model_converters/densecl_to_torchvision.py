# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a torchvision ResNet state dict.

    python tools/model_converters/densecl_to_torchvision.py SRC DST

Load the result with ``torchvision.models.resnet50()
.load_state_dict(torch.load(DST), strict=False)`` (only ``fc.*`` missing).
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from densecl_plugin.converters import (convert_to_torchvision,  # noqa: E402
                                       infer_resnet_depth)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='pre-training or extracted checkpoint')
    parser.add_argument('dst', help='output file (.pth)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    state_dict = convert_to_torchvision(args.src, args.dst)
    print(f'{args.dst}: torchvision ResNet-{infer_resnet_depth(state_dict)} '
          f'backbone, {len(state_dict)} tensors (no fc)')


if __name__ == '__main__':
    main()
