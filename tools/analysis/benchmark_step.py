# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Step time and peak memory of DenseCL against MoCo v2, and of the dense loss.

Examples::

    # the measurement reported in the README (CPU, about 5 minutes)
    python tools/analysis/benchmark_step.py --depth 50 --batch 8 --size 224 \
        --queue-len 65536 --iters 10
    # only the dense loss at the paper's per-GPU size (N=32, S=7: M=1568)
    python tools/analysis/benchmark_step.py --skip-steps --dense-rows 1568

The logic lives in :mod:`densecl_plugin.engine.step_benchmark`.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..', '..')))

from densecl_plugin.engine.step_benchmark import (  # noqa: E402
    benchmark_dense_loss, benchmark_models, format_report, grid_cells)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--depth', type=int, default=50, help='ResNet depth')
    p.add_argument('--batch', type=int, default=8, help='images per step')
    p.add_argument('--size', type=int, default=224, help='input side (px)')
    p.add_argument('--queue-len', type=int, default=65536, help='K')
    p.add_argument('--iters', type=int, default=10,
                   help='timed steps per model')
    p.add_argument('--warmup', type=int, default=2,
                   help='untimed steps per model first')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--amp', action='store_true', help='bf16 autocast')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: torch\'s choice)')
    p.add_argument('--dense-rows', type=int, default=None,
                   help='rows M of the dense-loss benchmark (default: '
                   'batch * S^2 of --size)')
    p.add_argument('--skip-steps', action='store_true',
                   help='only benchmark the dense loss')
    p.add_argument('--json', default=None, help='also write results here')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = None
    if not args.skip_steps:
        steps = benchmark_models(args.depth, args.batch, args.size,
                                 args.queue_len, args.iters, args.warmup,
                                 args.device, args.amp)
    M = args.dense_rows or args.batch * grid_cells(args.size)
    dense = benchmark_dense_loss(M, args.queue_len, iters=max(args.iters, 3),
                                 device=args.device)
    print(format_report(steps, dense))
    results = dict(steps=steps, dense_loss=dense)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
