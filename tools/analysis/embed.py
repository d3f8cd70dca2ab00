# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Global embeddings of a folder of images: embeddings.npy and files.txt.

    python tools/analysis/embed.py CONFIG CKPT FOLDER --out DIR \
        [--feature c5|neck] [--size 224] [--batch-size 32]

Every image under FOLDER (recursively, sorted) is resized (shorter side to
--size, centre crop) and encoded in eval mode by CONFIG's model loaded from
CKPT (``random``: the config's random init). ``--feature c5`` (the default)
is the backbone's last map averaged over its cells, what a downstream task
inherits; ``--feature neck`` is the neck's global embedding (unnormalised).
DIR gets ``embeddings.npy`` (float32, one row per image), ``files.txt`` (the
paths relative to FOLDER, in the rows' order) and ``embed.json`` (the
settings). See :mod:`densecl_lab.analysis.embed`.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.analysis.embed import FEATURES, embed_folder  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='the pre-training config (the model)')
    p.add_argument('checkpoint',
                   help="its checkpoint, or 'random' for the random init")
    p.add_argument('folder', help='image folder (searched recursively)')
    p.add_argument('--out', required=True,
                   help='output folder: embeddings.npy, files.txt, '
                   'embed.json')
    p.add_argument('--feature', choices=FEATURES, default='c5',
                   help='c5: the pooled last backbone map (default); neck: '
                   "the neck's global embedding")
    p.add_argument('--size', type=int, default=224,
                   help='input side in px (shorter side, centre crop), '
                   'default 224')
    p.add_argument('--batch-size', type=int, default=32,
                   help='images per forward pass, default 32')
    p.add_argument('--device', default='cpu', help='default cpu')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    return embed_folder(args.config, args.checkpoint, args.folder, args.out,
                        args.feature, args.size, args.batch_size, args.device)


if __name__ == '__main__':
    main()
