# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a torchvision ResNet state dict.

    python tools/model_converters/densecl_to_torchvision.py SRC DST

Load the result with ``torchvision.models.resnet50()
.load_state_dict(torch.load(DST), strict=False)`` (only ``fc.*`` missing).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from densecl_plugin.converters.cli import converter_main  # noqa: E402

if __name__ == '__main__':
    converter_main('densecl_to_torchvision')
