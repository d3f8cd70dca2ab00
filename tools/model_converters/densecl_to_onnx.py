# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to ONNX (the backbone).

    python tools/model_converters/densecl_to_onnx.py SRC DST.onnx

Run the result with onnxruntime: input ``image`` (N, 3, H, W), RGB normalised
with the ImageNet mean and std; outputs ``c5`` and ``pooled``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from densecl_plugin.converters.cli import converter_main  # noqa: E402

if __name__ == '__main__':
    converter_main('densecl_to_onnx')
