# Copyright (c) densecl_plugin contributors. All rights reserved.
"""What pre-trained encoders learned, on fresh view pairs of held-out draws.

    python tools/analysis/probe_pretraining.py CONFIG CKPT [CKPT ...] \
        [--images DIR] [--num 128] [--seed 10000] [--bn train|eval]

Each checkpoint (``random``: the config's random init) embeds two fresh
views of ``--num`` images (evenly spaced over the sorted files of
``--images``, by default the demo pool; the views are drawn with seeds
``--seed + i``, far from any training draw) and prints view-pair top-1
retrieval, the embedding std x sqrt(D), partner and non-partner cosines,
alignment and uniformity (:mod:`densecl_lab.analysis.view_pair_probe`).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.analysis.view_pair_probe import folder_images  # noqa: E402
from densecl_lab.analysis.view_pair_probe import (format_probe,
                                                  probe_checkpoints)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='the pre-training config (its views)')
    p.add_argument('checkpoints', nargs='+',
                   help="checkpoint files, or 'random' for the random init")
    p.add_argument('--images', default='data/demo/unlabeled',
                   help='image folder (default: the demo pool)')
    p.add_argument('--num', type=int, default=128,
                   help='view pairs (images), default 128')
    p.add_argument('--seed', type=int, default=10000,
                   help='view i is drawn with seed SEED + i')
    p.add_argument('--bn', choices=('train', 'eval'), default='train',
                   help='BatchNorm statistics: of the probe batch (train, '
                   'as in pre-training) or the running ones (eval)')
    p.add_argument('--json', help='also write the rows here')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> list:
    args = parse_args(argv)
    images = folder_images(args.images, args.num)
    rows = probe_checkpoints(args.config, args.checkpoints, images,
                             args.seed, args.bn)
    print(format_probe(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
