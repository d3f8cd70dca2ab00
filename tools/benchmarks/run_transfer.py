# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Fine-tune one pre-trained checkpoint on downstream benchmarks, tabulate.

    python tools/benchmarks/run_transfer.py PRETRAIN \\
        [--benchmarks voc0712-c4-24k voc12aug-20k ... | all]
        [--configs CFG ...]
        [--gpus N] [--launcher none|pytorch|slurm] [--partition P]
        [--work-dir ROOT] [--print-only] [--collect-only] [--status]
        [-- train.py args]

Checks PRETRAIN first, runs each benchmark in turn (``--print-only``: prints
the commands instead; ``--launcher slurm``: submits each as its own batch
job, writes the job ids to ROOT/<ckpt>/slurm_jobs.json and returns; run it
again to resubmit failed or preempted jobs, which resume; ``--status``: each
job's state), then writes
``ROOT/<ckpt>/results.{md,csv}``: our metrics next to the published DenseCL
and MoCo v2 numbers. ``--list`` shows the benchmarks.
The logic is :func:`densecl_plugin.downstream.transfer.run_transfer_cli`.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from densecl_plugin.downstream.transfer import BENCHMARKS  # noqa: E402
from densecl_plugin.downstream.transfer import run_transfer_cli

from densecl_plugin.utils.cli import add_flags, split_passthrough  # noqa


def parse_args(argv=None):
    argv, extra = split_passthrough(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('pretrain', nargs='?', help='pre-trained checkpoint')
    parser.add_argument('--benchmarks', nargs='+', default=[],
                        help=f'names ({", ".join(BENCHMARKS)}) or "all"')
    parser.add_argument('--configs', nargs='+', default=[],
                        help='benchmark config files (any mmdet/mmseg '
                        'config taking model.init_cfg.checkpoint)')
    parser.add_argument('--gpus', type=int,
                        help="GPUs per run (default: the protocol's)")
    parser.add_argument('--launcher', default='pytorch',
                        choices=['none', 'pytorch', 'slurm'])
    parser.add_argument('--partition', help='Slurm partition')
    parser.add_argument('--work-dir', default='work_dirs/transfer',
                        help='root of the runs and the results table')
    add_flags(parser, print_only='print the commands, run nothing',
              collect_only='only read the metrics of finished runs',
              status='show the state of the submitted Slurm jobs',
              list='list the benchmarks and exit')
    args = parser.parse_args(argv)
    args.extra = extra
    if not args.list and not args.pretrain:
        parser.error('PRETRAIN is required')
    if not (args.list or args.status) and not (args.benchmarks or
                                               args.configs):
        parser.error('give --benchmarks and/or --configs')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_transfer_cli(
        args.pretrain, args.benchmarks, args.configs, list_only=args.list,
        status=args.status,
        work_root=args.work_dir, gpus=args.gpus, launcher=args.launcher,
        partition=args.partition, extra_args=args.extra,
        print_only=args.print_only, collect_only=args.collect_only)


if __name__ == '__main__':
    sys.exit(main())
