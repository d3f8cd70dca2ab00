# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``make demo``: the DenseCL story on real data, on a CPU.

    python tools/demo.py [--quick] [--force] [--work-dir DIR]
        [--data-dir DIR] [--cache-dir DIR] [--no-progress]

Prepares real data from package wheels, pre-trains MoCo v2 and DenseCL,
fine-tunes a detector and a segmenter from random init / MoCo v2 / DenseCL,
measures dense correspondence accuracy, and writes one table and plots to
the work dir. Finished stages are reused unless ``--force``. The logic is
:func:`densecl_lab.demo.run_demo`.
"""
import argparse
import os
import os.path as osp
import sys

# OpenMP threads that spin while they wait make torch steps several times
# slower when other processes share the cores (a detector step: 6.5 s -> 1.0
# s with 3-4 busy neighbours on 2 cores). Must be set before torch loads.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from densecl_lab.demo import run_demo  # noqa: E402
from densecl_plugin.utils.cli import add_demo_dirs, add_flags  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='DenseCL vs MoCo v2 vs random init on real data, on a CPU')
    add_flags(parser,
              quick='a few iterations per stage (smoke run), in '
              'work_dirs/demo_quick',
              force='redo stages that are already finished')
    add_demo_dirs(parser, 'results (default work_dirs/demo or '
                  'work_dirs/demo_quick)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    return run_demo(quick=args.quick, force=args.force,
                    work_dir=args.work_dir, data_dir=args.data_dir,
                    cache_dir=args.cache_dir,
                    show_progress=not args.no_progress)


if __name__ == '__main__':
    main()
