# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Images/s of the two-view MoCo v2 data pipeline on real JPEGs.

    python tools/analysis/benchmark_pipeline.py --baseline-rev e3d9479 \
        --workers 1 2 --out work_dirs/pipeline.json

One single-threaded process per variant (``--baseline-rev``: an earlier
revision's transforms, side by side with the current ones, pixel by pixel),
a per-transform breakdown, and DataLoaders with ``--workers`` processes, on
scikit-image's photos (``--max-side``) or a folder (``--images``). How it
measures: see :mod:`densecl_lab.benchmarks.pipeline`
(:func:`~densecl_lab.benchmarks.run_pipeline_benchmark` is what this
script runs).
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.benchmarks.pipeline import (DEFAULT_CONFIG, check_options,
                                             run_pipeline_benchmark)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config with a `train_pipeline`')
    parser.add_argument('--images', help='folder of images (default: the '
                        'scikit-image photos written to a temporary folder)')
    parser.add_argument('--max-side', type=int, default=500,
                        help='longest side of the written photos')
    parser.add_argument('--rounds', type=int, default=15,
                        help='passes over the images (median reported)')
    parser.add_argument('--workers', type=int, nargs='*', default=[],
                        help='also measure DataLoaders with these numbers of '
                        'worker processes (>= 1)')
    parser.add_argument('--worker-images', type=int, default=256,
                        help='images per DataLoader measurement')
    parser.add_argument('--worker-rounds', type=int, default=3,
                        help='DataLoader measurements per variant and count '
                        '(interleaved, median reported)')
    parser.add_argument('--baseline-rev',
                        help='git revision whose transforms run side by side')
    parser.add_argument('--decode-study', action='store_true',
                        help='also measure reduced-size JPEG decoding')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the results as JSON here')
    args = parser.parse_args(argv)
    try:
        check_options(args.rounds, args.max_side, args.worker_rounds,
                      args.workers)
    except ValueError as e:
        parser.error(str(e))
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark; print a table and return the results."""
    args = parse_args(argv)
    return run_pipeline_benchmark(
        args.config, args.images, args.max_side, args.rounds, args.workers,
        args.worker_images, args.worker_rounds, args.baseline_rev,
        args.decode_study, args.seed, args.out, command=' '.join([
            'python', 'tools/analysis/benchmark_pipeline.py',
            *(sys.argv[1:] if argv is None else argv)]))


if __name__ == '__main__':
    main()
