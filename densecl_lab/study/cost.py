# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The study's cost model: how many seconds each of its steps should take.

Per-unit costs (seconds per pre-training iteration, per fine-tuning
iteration plus a fixed part, per evaluation stage, ...) come from
:data:`DEFAULT_COSTS` or are measured in finished stages
(:func:`measured_costs`); :class:`CostModel` turns them into the estimated
seconds of one step, one ``(seed, budget)`` unit and a whole plan (with
parallel shards: the busiest shard's). The study's progress line, its ETA
and :func:`~densecl_lab.study.study.estimate` read them.
"""
import glob
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from densecl_lab.demo.stages import ALGOS
from densecl_lab.utils.staged_run import try_load_json
from .shards import assign_shards

#: held-out images of the demo data (the plan's guess before the data
#: manifest is read)
NUM_HELD_OUT = 18

#: per-unit costs (seconds, one core) used until a measurement exists;
#: measured here with ``--estimate`` (see the README section)
DEFAULT_COSTS = dict(
    source='built-in defaults (one core)',
    pretrain_mocov2_per_iter=1.0, pretrain_densecl_per_iter=1.0,
    pretrain_overhead=10.0, curve_per_pair=0.1,
    detection_per_iter=1.5, detection_fixed=30.0,
    segmentation_per_iter=1.0, segmentation_fixed=15.0,
    correspondence_per_stage=20.0, probe_per_stage=10.0,
    dense_probe_per_stage=15.0, retrieval_per_stage=10.0)


def fmt_duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``42 s``."""
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f'{h} h {m:02d} min'
    return f'{m} min {sec:02d} s' if m else f'{sec} s'


def measured_costs(work_dir: str) -> Optional[Dict[str, float]]:
    """Per-unit costs measured in the finished stages under ``work_dir``
    (itself or a ``calibration`` run inside it), or None.

    Pre-training per iteration excludes the curve evaluations (timed
    apart); fine-tuning splits into per iteration and a fixed part (build,
    validation); evaluation stages are per stage. Per-iteration costs of
    several runs are weighted by their iterations (longer runs count more).
    """
    roots = [work_dir, osp.join(work_dir, 'calibration')]
    files = [f for r in roots for f in glob.glob(
        osp.join(r, 'seed*', '*', '**', 'result.json'), recursive=True)]
    if not files:
        return None
    sums: Dict[str, List[Tuple[float, float]]] = {}

    def add(key: str, value: float, weight: float = 1.0) -> None:
        sums.setdefault(key, []).append((value, weight))

    for path in files:
        r = try_load_json(path)
        if not r or 'stage_wall_time' not in r:
            continue
        if 'algo' in r and 'losses' in r:  # pre-training
            curve = try_load_json(osp.join(osp.dirname(path), 'curve.json'))
            # the evaluations inside the timed iterations (not the one
            # before training) are taken out of the per-iteration cost
            curve_time = curve['eval_time'] if curve else 0.0
            in_train = curve.get('train_eval_time', curve_time) \
                if curve else 0.0
            n_evals = len(curve['held_out']) if curve else 0
            add(f'pretrain_{r["algo"]}_per_iter',
                max(r['train_time'] - in_train, 0.0) / r['iters'],
                r['iters'])
            add('pretrain_overhead', r['stage_wall_time'] - r['train_time'])
            pairs = n_evals * len(curve.get('seeds', [1])) * curve.get(
                'num_images', 1) if curve else 0
            if pairs:
                add('curve_per_pair', curve_time / pairs, pairs)
        elif 'task' in r:
            add(f'{r["task"]}_per_iter', r['train_time'] / r['iters'],
                r['iters'])
            add(f'{r["task"]}_fixed', r['stage_wall_time'] - r['train_time'])
        elif r.get('kind') in ('dense_probe', 'retrieval'):
            add(f'{r["kind"]}_per_stage', r['stage_wall_time'])
        elif 'num_pairs' in r:
            add('correspondence_per_stage', r['stage_wall_time'])
        elif 'fold_accuracy' in r:
            add('probe_per_stage', r['stage_wall_time'])
    costs: Dict[str, Any] = dict(DEFAULT_COSTS)
    for key, values in sums.items():  # per iteration: weighted by iters
        costs[key] = sum(v * w for v, w in values) / sum(
            w for _, w in values)
    missing = [k for k in DEFAULT_COSTS if k != 'source' and k not in sums]
    costs['source'] = f'measured in {len(files)} stages under {work_dir}' + (
        f' (defaults for {", ".join(missing)})' if missing else '')
    return costs


class CostModel:
    """The estimated seconds of the study's steps.

    Args:
        settings (StudySettings): the plan (budgets, curve interval and
            images, fine-tuning iterations, ...).
        costs (dict): per-unit costs, as :data:`DEFAULT_COSTS` (e.g. from
            :func:`measured_costs`).
        num_held_out (int): held-out images of the data. Defaults to
            :data:`NUM_HELD_OUT`.
    """

    def __init__(self, settings: Any, costs: Dict[str, Any],
                 num_held_out: int = NUM_HELD_OUT) -> None:
        self.settings = settings
        self.costs = costs
        self.num_held_out = num_held_out

    def pretrain(self, algo: str, budget: int) -> float:
        """One pre-training of ``algo`` for ``budget`` iterations, with its
        held-out curve."""
        c = self.costs
        return c[f'pretrain_{algo}_per_iter'] * budget + \
            c['pretrain_overhead'] + c['curve_per_pair'] * \
            self.curve_pairs() * (budget // self.settings.curve_interval + 2)

    def curve_pairs(self) -> int:
        """View pairs of one held-out curve evaluation."""
        s = self.settings
        n = self.num_held_out
        images = min(s.curve_max_images or n, n)
        return images * len(s.curve_seeds or s.corr_seeds)

    def finetune(self) -> float:
        """Both fine-tunings (detection and segmentation) of one arm."""
        c, s = self.costs, self.settings
        det = s.detection_iters or 60
        seg = s.segmentation_iters or 120
        return c['detection_per_iter'] * det + c['detection_fixed'] + \
            c['segmentation_per_iter'] * seg + c['segmentation_fixed']

    def evaluation(self) -> float:
        """The evaluation stages of one checkpoint: correspondence, linear
        probe, dense probe and view retrieval."""
        c = self.costs
        return c['correspondence_per_stage'] + c['probe_per_stage'] + \
            c['dense_probe_per_stage'] + c['retrieval_per_stage']

    def unit(self, seed: int, budget: int) -> float:
        """One ``(seed, budget)`` unit: both arms pre-trained, fine-tuned
        and evaluated, plus the seed's random init with its smallest
        budget."""
        cost = sum(self.pretrain(algo, budget) for algo in ALGOS) + \
            len(ALGOS) * (self.finetune() + self.evaluation())
        if budget == min(self.settings.budgets):
            cost += self.finetune() + self.evaluation()
        return cost

    def plan(self, units: Sequence[Tuple[int, int]], jobs: int = 1) -> float:
        """The whole plan ``units``; with ``jobs`` parallel shards
        (:func:`~.shards.assign_shards`), the most loaded shard's seconds.
        ``jobs`` defaults to 1."""
        costs = [self.unit(*u) for u in units]
        if jobs <= 1:
            return sum(costs)
        owner = assign_shards(units, costs, jobs)
        return max(sum(c for u, c in zip(units, costs) if owner[u] == k)
                   for k in range(jobs))
