# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Train any MMEngine config: ours, or an mmdet/mmseg benchmark config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]]
        [--amp] [--auto-scale-lr] [--cfg-options k=v ...] [--launcher ...]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from densecl_plugin.apis import build_train_config, train  # noqa: E402
from densecl_plugin.utils.cli import add_cfg_options, add_flags  # noqa: E402
from densecl_plugin.utils.dist_launch import close_launcher_dist  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'intact checkpoint in the work dir (a damaged newest one, or a '
        'last_checkpoint naming nothing, is reported and skipped)')
    add_flags(parser, amp='mixed precision (fp16 on GPU, bf16 on CPU)',
              auto_scale_lr='scale the lr by the actual batch size')
    add_cfg_options(parser)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = build_train_config(args.config, args.work_dir, args.resume,
                             args.amp, args.auto_scale_lr, args.cfg_options,
                             args.launcher)
    runner = train(cfg)
    close_launcher_dist()
    return runner


if __name__ == '__main__':
    main()
