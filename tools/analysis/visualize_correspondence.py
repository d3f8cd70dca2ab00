# Copyright (c) densecl_plugin contributors. All rights reserved.
"""See which cells DenseCL matches between two augmented views of an image.

    python tools/analysis/visualize_correspondence.py CONFIG CHECKPOINT IMAGE
        [--out DIR] [--seed 0] [--threshold 0.9] [--cells R,C ...]
        [--device cpu] [--cfg-options k=v ...]

CHECKPOINT may be ``none`` or ``random`` for the config's random init. Writes
``matches.png`` (mutual best matches with similarity > threshold, coloured by
similarity; red dashed: wrong by the crop geometry), ``similarity.png`` (heat
maps of chosen query cells over the key view) and ``summary.json`` to --out.
The logic is :func:`densecl_lab.analysis.visualize_correspondence`.
"""
import argparse
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from densecl_lab.analysis.visualize_correspondence import \
    visualize_correspondence  # noqa: E402
from densecl_plugin.utils.cli import add_cfg_options  # noqa: E402


def _cell(text: str):
    try:
        row, col = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'a cell is ROW,COL (two integers), got {text!r}') from None
    return row, col


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Draw DenseCL's dense correspondences between two views")
    parser.add_argument('config', help='pre-training config file')
    parser.add_argument('checkpoint',
                        help='checkpoint file, or "none"/"random" for a '
                        'random init')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', default='work_dirs/correspondence',
                        help='output folder')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the two random views')
    parser.add_argument('--threshold', type=float, default=0.9,
                        help='draw mutual best matches with cosine '
                        'similarity above this')
    parser.add_argument('--cells', type=_cell, nargs='+',
                        help='query cells ROW,COL for the heat maps '
                        '(default: 3 cells the key view also sees)')
    parser.add_argument('--device', default='cpu')
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    summary = visualize_correspondence(
        args.config, args.checkpoint, args.image, args.out, seed=args.seed,
        threshold=args.threshold, cells=args.cells, device=args.device,
        cfg_options=args.cfg_options)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == '__main__':
    main()
