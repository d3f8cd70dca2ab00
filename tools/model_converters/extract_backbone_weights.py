# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Extract the backbone of a pre-training checkpoint.

    python tools/model_converters/extract_backbone_weights.py SRC DST

Reads densecl_plugin / mmselfsup / mmpretrain (``backbone.*``), OpenSelfSup
and the authors' DenseCL (``encoder_q.0.*``), MoCo (``module.encoder_q.*``)
checkpoints and writes ``{'state_dict': backbone weights, 'meta': ...}``.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from densecl_plugin.converters import extract_backbone_weights  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='pre-training checkpoint')
    parser.add_argument('dst', help='output file (.pth)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = extract_backbone_weights(args.src, args.dst)
    print(f'{args.dst}: {len(out.state_dict)} backbone tensors from a '
          f'{out.layout} checkpoint (stripped {out.prefix!r}'
          + (f', dropped {out.dropped}' if out.dropped else '') + ')')


if __name__ == '__main__':
    main()
