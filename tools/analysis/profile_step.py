# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Profile a DenseCL and a MoCo v2 training step region by region.

Example (CPU, ResNet-50, about 2 minutes)::

    OMP_WAIT_POLICY=PASSIVE python tools/analysis/profile_step.py \
        --depth 50 --batch 8 --size 224 --queue-len 65536 --steps 2

Prints, per region of the step (query backbone, the necks' global and dense
branches, key forward, matching, gather, the two InfoNCE terms, enqueue,
their backward ops, optimizer step), the milliseconds per step and their
share of it for both models and the difference, then the aten ops whose
self time differs most. The logic is
:func:`densecl_lab.benchmarks.step_profile.run_step_profile`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.benchmarks.step_profile import run_step_profile  # noqa: E402
from densecl_plugin.utils.cli import add_step_args  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_step_args(p, 'steps', 'profiled steps per model', 2)
    p.add_argument('--threads', type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument('--json', default=None, help='also write results here')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    return run_step_profile(args.depth, args.batch, args.size,
                            args.queue_len, args.steps, args.warmup,
                            args.device, args.threads, args.json)


if __name__ == '__main__':
    main()
