# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a timm ResNet state dict.

    python tools/model_converters/densecl_to_timm.py SRC DST.safetensors

Load the result with ``timm.create_model('resnet50', num_classes=0,
checkpoint_path=DST)`` (strict: every key of the backbone, no ``fc``).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from densecl_plugin.converters.cli import converter_main  # noqa: E402

if __name__ == '__main__':
    converter_main('densecl_to_timm')
