# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A seeded small-scale study: DenseCL vs MoCo v2 vs random init.

    python tools/benchmarks/small_scale_study.py [--quick] [--estimate]
        [--budgets 250 1000 2000] [--seeds 0 1 2] [--jobs N] [--force]
        [--work-dir DIR] [--data-dir DIR] [--cache-dir DIR] [--no-progress]

Pre-trains MoCo v2 and DenseCL (the demo's configs) at several budgets and
seeds, evaluates every checkpoint and each seed's random init on held-out
correspondence, detection, segmentation, a linear probe, a frozen-feature
dense probe (C4 and C5, nuclei and tree crowns) and view retrieval, and writes
``results.{md,json}`` and plots to the work dir. Finished runs are reused,
so a stopped study resumes; ``--estimate`` prints the expected wall time.
The logic is :func:`densecl_lab.study.run_study`.
"""
import argparse
import os
import os.path as osp
import sys

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # before torch loads
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
from densecl_lab.study import run_study  # noqa: E402
from densecl_plugin.utils.cli import add_demo_dirs, add_flags  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='DenseCL vs MoCo v2 vs random init over pre-training '
        'budgets and seeds, on a CPU')
    add_flags(parser,
              quick='a few iterations, 2 seeds, 2 budgets, tiny evaluation '
              '(smoke run), in work_dirs/small_scale_study_quick',
              estimate='print the expected wall time (calibrating first if '
              'nothing was measured in the work dir) and stop',
              force='redo runs that are already finished')
    parser.add_argument('--budgets', type=int, nargs='+', default=None,
                        help='pre-training iterations (default 250 1000 '
                        '2000; quick: 2 4)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='seeds (default 0 1 2; quick: 0 1)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='parallel processes, e.g. the number of cores '
                        '(each runs a balanced share of the (seed, budget) '
                        'runs, then this one writes the report; default 1)')
    add_demo_dirs(parser, 'results (default work_dirs/small_scale_study)',
                  'the demo data sets (built if missing)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    return run_study(quick=args.quick, force=args.force,
                     work_dir=args.work_dir, data_dir=args.data_dir,
                     cache_dir=args.cache_dir, budgets=args.budgets,
                     seeds=args.seeds, only_estimate=args.estimate,
                     jobs=args.jobs,
                     show_progress=not args.no_progress)


if __name__ == '__main__':
    main()
