# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Step time and peak memory of DenseCL against MoCo v2, and of the dense loss.

Examples::

    # the measurement reported in the README (CPU, about 5 minutes)
    python tools/analysis/benchmark_step.py --depth 50 --batch 8 --size 224 \
        --queue-len 65536 --iters 10
    # only the dense loss at the paper's per-GPU size (N=32, S=7: M=1568)
    python tools/analysis/benchmark_step.py --skip-steps --dense-rows 1568
    # peak step memory only, at the paper's per-GPU batch
    python tools/analysis/benchmark_step.py --batch 32 --memory-only
    # our DenseCL and MoCo v2 against mmpretrain 1.2's (same weights, queues,
    # views; needs pip install mmpretrain==1.2.0, and --torchvision-standin
    # tests/peers/standin where no torchvision build of the installed torch
    # is installed)
    python tools/analysis/benchmark_step.py --peer --iters 5 \
        --torchvision-standin tests/peers/standin
    # images/s of whole training iterations (loader from the demo pool's
    # JPEGs + train_step), ours (fp32, and bf16 + channels-last) against
    # mmpretrain 1.2's DenseCL with its own pipeline, 1 and 2 loader workers
    python tools/analysis/benchmark_step.py --end-to-end --peer \
        --torchvision-standin tests/peers/standin
    # images/s with and without each speed option, and all together
    python tools/analysis/benchmark_step.py --depth 18 --size 112 \
        --queue-len 4096 --options amp channels_last compile

The logic is :func:`densecl_lab.benchmarks.run_step_benchmark`
(``--peer``: :func:`densecl_lab.benchmarks.peer.run_peer_benchmark`;
``--end-to-end``: :func:`densecl_lab.benchmarks.end_to_end.run_end_to_end`)
(:mod:`densecl_lab.benchmarks.step_benchmark`, measuring with
:mod:`densecl_lab.benchmarks.step`; the option comparison, ``--options``:
bf16/fp16 autocast, channels-last, ``torch.compile`` of the backbones, is
:mod:`densecl_lab.benchmarks.options`).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.benchmarks import (AMP_DTYPES, OPTIONS,  # noqa: E402
                                    run_peer_benchmark, run_step_benchmark)
from densecl_lab.benchmarks.end_to_end import SCENARIOS  # noqa: E402
from densecl_lab.benchmarks.end_to_end import run_end_to_end
from densecl_plugin.utils.cli import add_step_args  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_step_args(p)
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
                   help='skip the peak-memory passes (of the steps, or of '
                   'the --options variants)')
    p.add_argument('--memory-only', action='store_true',
                   help='only the peak step memory of both models (one '
                   'untimed step each first)')
    p.add_argument('--peer', action='store_true',
                   help="our DenseCL and MoCo v2 against mmpretrain 1.2's "
                   '(same weights, queues and views, steps interleaved; '
                   'needs pip install mmpretrain==1.2.0)')
    p.add_argument('--torchvision-standin', metavar='DIR', default=None,
                   help='--peer: a directory with a stand-in torchvision '
                   'package (e.g. tests/peers/standin), needed when no '
                   'torchvision build matching the installed torch is '
                   'installed (mmpretrain imports torchvision but its models '
                   'do not call it)')
    p.add_argument('--end-to-end', action='store_true',
                   help='images/s of whole training iterations, the data '
                   'pipeline on real JPEGs included (with --peer: against '
                   "mmpretrain 1.2's DenseCL and pipeline)")
    p.add_argument('--scenarios', nargs='+', choices=sorted(SCENARIOS),
                   default=list(SCENARIOS),
                   help='--end-to-end: which settings (default: all)')
    p.add_argument('--images', default='data/demo/unlabeled',
                   help='--end-to-end: the image folder (default: the demo '
                   'pool, which `make demo` writes)')
    p.add_argument('--workers', type=int, nargs='+', default=[1, 2],
                   help='--end-to-end: loader worker counts (default: 1 2)')
    p.add_argument('--rounds', type=int, default=3,
                   help='--end-to-end: interleaved rounds (default: 3)')
    p.add_argument('--block', type=int, default=4,
                   help='--end-to-end: timed iterations per block '
                   '(default: 4)')
    p.add_argument('--json', default=None, help='also write results here')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.end_to_end:
        return run_end_to_end(
            args.scenarios, args.images, args.workers, args.rounds,
            args.block, args.peer, args.torchvision_standin, args.threads,
            args.json)
    if args.peer:
        return run_peer_benchmark(
            args.depth, args.batch, args.size, args.queue_len, args.iters,
            args.warmup, args.device, args.threads,
            args.torchvision_standin, json_path=args.json)
    return run_step_benchmark(
        args.depth, args.batch, args.size, args.queue_len, args.iters,
        args.warmup, args.device, args.amp, args.threads, args.dense_rows,
        args.skip_steps, args.options, args.amp_dtype, peak=not args.no_peak,
        json_path=args.json, memory_only=args.memory_only)


if __name__ == '__main__':
    main()
