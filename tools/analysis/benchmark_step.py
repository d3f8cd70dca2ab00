# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Step time and peak memory of DenseCL against MoCo v2, and of the dense loss.

Examples::

    # the measurement reported in the README (CPU, about 5 minutes)
    python tools/analysis/benchmark_step.py --depth 50 --batch 8 --size 224 \
        --queue-len 65536 --iters 10
    # only the dense loss at the paper's per-GPU size (N=32, S=7: M=1568)
    python tools/analysis/benchmark_step.py --skip-steps --dense-rows 1568
    # images/s with and without each speed option, and all together
    python tools/analysis/benchmark_step.py --depth 18 --size 112 \
        --queue-len 4096 --options amp channels_last compile

The logic is :func:`densecl_plugin.benchmarks.run_step_benchmark`
(:mod:`densecl_plugin.benchmarks.step`; the option comparison, ``--options``:
bf16/fp16 autocast, channels-last, ``torch.compile`` of the backbones, is
:mod:`densecl_plugin.benchmarks.options`).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_plugin.benchmarks import (AMP_DTYPES, OPTIONS,  # noqa: E402
                                       run_step_benchmark)


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
    p.add_argument('--options', nargs='+', choices=OPTIONS, default=None,
                   help='compare images/s with and without each of these '
                   'options (and all together) instead')
    p.add_argument('--amp-dtype', choices=sorted(AMP_DTYPES), default='bf16',
                   help='autocast dtype of the amp option (fp16: with loss '
                   'scaling, GPU only)')
    p.add_argument('--no-peak', action='store_true',
                   help='--options: skip the peak-memory passes')
    p.add_argument('--json', default=None, help='also write results here')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    return run_step_benchmark(
        args.depth, args.batch, args.size, args.queue_len, args.iters,
        args.warmup, args.device, args.amp, args.threads, args.dense_rows,
        args.skip_steps, args.options, args.amp_dtype, peak=not args.no_peak,
        json_path=args.json)


if __name__ == '__main__':
    main()
