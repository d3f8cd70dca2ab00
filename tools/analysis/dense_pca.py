# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The first three principal components of C5 features as colours.

    python tools/analysis/dense_pca.py CONFIG CKPT [CKPT ...] --images DIR \
        [--num 4] [--labels L [L ...]] [--size 384] [--out dense_pca.png]

Each checkpoint (``random``: the config's random init; any checkpoint whose
backbone fits CONFIG's, e.g. MoCo v2 beside DenseCL) gives one row: the C5
cells of ``--num`` images (evenly spaced over the sorted files of
``--images``) at ``--size`` px, one PCA over all of them, the first three
components as RGB (DINOv2's picture). See
:mod:`densecl_lab.analysis.dense_pca`.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.analysis.dense_pca import DEFAULT_SIZE  # noqa: E402
from densecl_lab.analysis.dense_pca import dense_pca_checkpoints
from densecl_lab.analysis.view_pair_probe import folder_images  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='a pre-training config (the backbone)')
    p.add_argument('checkpoints', nargs='+',
                   help="checkpoint files, or 'random' for the random init")
    p.add_argument('--images', required=True, help='image folder')
    p.add_argument('--num', type=int, default=4,
                   help='images pictured, default 4')
    p.add_argument('--labels', nargs='+',
                   help='row labels, one per checkpoint (default: the '
                   'checkpoint paths)')
    p.add_argument('--size', type=int, default=DEFAULT_SIZE,
                   help=f'input side in px, default {DEFAULT_SIZE}')
    p.add_argument('--out', default='dense_pca.png', help='the PNG')
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.checkpoints):
        p.error(f'--labels gives {len(args.labels)} labels for '
                f'{len(args.checkpoints)} checkpoints')
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    labels = args.labels or args.checkpoints
    result = dense_pca_checkpoints(
        [(label, args.config, ckpt)
         for label, ckpt in zip(labels, args.checkpoints)],
        folder_images(args.images, args.num), args.out, args.size)
    for label, ratios in result['explained'].items():
        print(f'{label}: PC1-3 explain '
              + ' / '.join(f'{100 * r:.1f}' for r in ratios) + ' % of the '
              'C5 variance')
    print(f'{result["figure"]}: {len(result["images"])} images at '
          f'{result["size"]} px ({result["grid"][0]}x{result["grid"][1]} '
          'cells)')
    return result


if __name__ == '__main__':
    main()
