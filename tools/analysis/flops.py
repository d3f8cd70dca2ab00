# Copyright (c) densecl_plugin contributors. All rights reserved.
"""FLOPs and bytes of one DenseCL / MoCo v2 training step, and GPU-days.

    python tools/analysis/flops.py                      # R50, N=32, 224 px
    python tools/analysis/flops.py --gpu A100 --dtype bf16 --efficiency 0.35

Counted with ``FlopCounterMode`` on fake tensors (seconds on any machine);
matrix products and convolutions only. What is counted and how: see
:mod:`densecl_lab.benchmarks.flops` (:func:`~densecl_lab.benchmarks.
run_flops_estimate` is what this script runs).
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.benchmarks import GPU_PEAK_TFLOPS  # noqa: E402
from densecl_lab.benchmarks import IMAGENET_TRAIN, run_flops_estimate


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--batch', type=int, default=32, help='images per GPU')
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--queue-len', type=int, default=65536)
    p.add_argument('--feat-dim', type=int, default=128)
    p.add_argument('--gpus', type=int, default=8)
    p.add_argument('--epochs', type=int, default=200)
    p.add_argument('--images', type=int, default=IMAGENET_TRAIN,
                   help='images per epoch (ImageNet-1k train)')
    p.add_argument('--gpu', choices=sorted(GPU_PEAK_TFLOPS), nargs='*',
                   default=['V100', 'A100', 'H100'])
    p.add_argument('--dtype', default=None,
                   help='fp32, tf32, bf16 or fp16 (default: fp32 for V100, '
                   'bf16 otherwise)')
    p.add_argument('--efficiency', type=float, nargs='*', default=None,
                   help='fractions of peak (default: what the authors\' 2.3 '
                   'days on 8 V100s imply, and 0.25)')
    p.add_argument('--pipeline-rate', type=float, default=None,
                   help='two-view images/s of one CPU core through the data '
                   'pipeline (tools/analysis/benchmark_pipeline.py), to '
                   'size the data loading per GPU')
    p.add_argument('--json', help='also write the results here')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    return run_flops_estimate(
        args.depth, args.batch, args.size, args.queue_len, args.feat_dim,
        args.gpus, args.epochs, args.images, args.gpu, args.dtype,
        args.efficiency, args.pipeline_rate, json_path=args.json)


if __name__ == '__main__':
    main()
