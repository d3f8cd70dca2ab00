# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Extract the backbone of a pre-training checkpoint.

    python tools/model_converters/extract_backbone_weights.py SRC DST

Reads densecl_plugin / mmselfsup / mmpretrain (``backbone.*``), OpenSelfSup
and the authors' DenseCL (``encoder_q.0.*``), MoCo (``module.encoder_q.*``)
checkpoints and writes ``{'state_dict': backbone weights, 'meta': ...}``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
from densecl_plugin.converters.cli import converter_main  # noqa: E402

if __name__ == '__main__':
    converter_main('extract_backbone_weights')
