# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DAVIS-2017 label propagation with a pre-trained backbone (CRW protocol).

    python tools/benchmarks/davis/label_propagation.py CONFIG CHECKPOINT \
        --work-dir DIR [--davis-root data/DAVIS] [--device cuda] \
        [--sequences bike-packing ...] [--no-eval] [--cfg-options k=v ...]

Writes palette PNGs to DIR/Annotations/480p/<seq>/, and J&F tables
(global_results-val.csv, per-sequence_results-val.csv, results-val.md) to
DIR. The logic is :func:`densecl_plugin.evaluation.davis.run_benchmark` on
the config of :func:`~densecl_plugin.evaluation.davis.load_benchmark_config`.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__))))))
from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='DAVIS-2017 label propagation benchmark')
    parser.add_argument('config', help='benchmark config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='pre-trained checkpoint (full or extracted); '
                        'omit for the randomly initialised encoder')
    parser.add_argument('--work-dir', required=True,
                        help='where predictions and tables go')
    parser.add_argument('--davis-root', help='DAVIS-2017 root (data.root)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1')
    parser.add_argument('--sequences', nargs='+',
                        help='run only these sequences')
    parser.add_argument('--no-eval', action='store_true',
                        help='only write predictions')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. '
                        'propagation.topk=5')
    return parser.parse_args(argv)


def main(argv=None):
    from densecl_plugin.evaluation.davis import (format_table,
                                                 load_benchmark_config,
                                                 run_benchmark)
    args = parse_args(argv)
    cfg = load_benchmark_config(args.config, args.davis_root,
                                args.cfg_options)
    result = run_benchmark(cfg, args.checkpoint, args.work_dir, args.device,
                           args.sequences, evaluate=not args.no_eval)
    if 'global_row' in result:
        print(format_table([result['global_row']], 'markdown'))
        print('tables:', ', '.join(result['tables'].values()))
    return result


if __name__ == '__main__':
    main()
