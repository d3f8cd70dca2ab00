# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Tell whether a pre-training run is learning, collapsing or not learning yet.

    python tools/analysis/diagnose_pretraining.py WORK_DIR [--out-dir D] \
        [--compare OTHER_WORK_DIR ... --labels A B ...]

Reads the newest ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (the run
needs ``model.health_interval`` > 0), prints the verdict with its numbers and
writes ``diagnosis.png``, ``diagnosis.json`` and ``diagnosis.txt`` (into the
run's timestamp folder unless ``--out-dir``). The rules: see
:mod:`densecl_lab.analysis.pretraining_diagnosis` and
``docs/pretraining_health.md``. ``--compare`` also draws
``comparison.png``: this run's curves over those of the other work dirs
(``--labels``: one per run, this one first; default the folder names).
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from densecl_lab.analysis.pretraining_diagnosis import Rules  # noqa: E402
from densecl_lab.analysis.pretraining_diagnosis import (diagnose_work_dir,
                                                        find_scalars,
                                                        load_scalars,
                                                        plot_runs)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    d = Rules()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help="a Runner's work dir")
    parser.add_argument('--out-dir', help='where the diagnosis files go')
    parser.add_argument('--window', type=float, default=d.window,
                        help='share of the rows in a window')
    parser.add_argument('--std-collapse', type=float, default=d.std_collapse)
    parser.add_argument('--cos-collapse', type=float, default=d.cos_collapse)
    parser.add_argument('--loss-drop', type=float, default=d.loss_drop)
    parser.add_argument('--gap-growth', type=float, default=d.gap_growth)
    parser.add_argument('--compare', nargs='+', default=[],
                        help='other work dirs whose curves comparison.png '
                        'overlays')
    parser.add_argument('--labels', nargs='+',
                        help='a label per run, WORK_DIR first (default: '
                        'the folder names)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Diagnose, print the verdict line and the files; return the result."""
    args = parse_args(argv)
    try:
        rules = Rules(window=args.window, std_collapse=args.std_collapse,
                      cos_collapse=args.cos_collapse, loss_drop=args.loss_drop,
                      gap_growth=args.gap_growth)
        result = diagnose_work_dir(args.work_dir, args.out_dir, rules)
        if args.compare:
            dirs = [args.work_dir, *args.compare]
            labels = args.labels or [osp.basename(osp.normpath(d))
                                     for d in dirs]
            if len(labels) != len(dirs):
                raise ValueError(f'--labels gives {len(labels)} labels for '
                                 f'{len(dirs)} runs ({dirs})')
            png = osp.join(osp.dirname(result['files']['png']),
                           'comparison.png')
            result['files']['comparison'] = plot_runs(
                {lab: load_scalars(find_scalars(d))
                 for lab, d in zip(labels, dirs)}, png, rules=rules)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'diagnose_pretraining: {e}')
    print(result['summary'])
    for f in result['files'].values():
        print(f'wrote {f}')
    return result


if __name__ == '__main__':
    main()
