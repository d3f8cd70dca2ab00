# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A seeded small-scale study: DenseCL vs MoCo v2 vs random init, over
pre-training budgets.

For every seed and budget, MoCo v2 and DenseCL are pre-trained with the
demo's configs (ResNet-18, 80 px views, the real unlabeled pool), each
budget as a **separate run with its own cosine schedule** (a 250-iteration
budget is a full 250-iteration run, not the 250th iteration of a longer
one). Every checkpoint, and the random init of each seed, gets the same
held-out work:

- correspondence accuracy against the geometric truth on held-out views
  (with the same-cell and chance baselines);
- Faster R-CNN AP on the deepforest tiles, FCN mIoU on the nuclei (the
  demo's fine-tuning configs, fine-tuning seed = the study seed);
- a linear probe on frozen pooled C5 features (:mod:`.probe`).

During each pre-training, :class:`~.curve_hook.StudyCurveHook` records the
held-out correspondence accuracy every ``curve_interval`` iterations (and
DenseCL's training-batch ``corr_acc`` from ``CorrespondenceHook``).

The stages are the demo's (:class:`~densecl_plugin.demo.Demo`), so each
writes a ``result.json`` with a fingerprint of its inputs and is reused when
a later invocation has the same fingerprint: a stopped study resumes at the
run it was in. :func:`estimate` predicts the wall time of a plan from
per-iteration costs measured in finished stages (or a short calibration).
"""
import glob
import json
import os
import os.path as osp
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from mmengine.config import Config

from densecl_plugin.demo.data import DATA_SEED, prepare_demo_data
from densecl_plugin.demo.runs import quiet_logs
from densecl_plugin.demo.stages import ALGOS, TASKS, Demo, DemoSettings
from densecl_plugin.utils.hashing import file_sha256
from densecl_plugin.utils.staged_run import StagedRun, fingerprint
from .curve_hook import StudyCurveHook  # noqa: F401 (registers the hook)

#: held-out images of the demo data (the plan's guess before the data
#: manifest is read)
NUM_HELD_OUT = 18
#: the arms, in report order
ARMS = ('random', 'mocov2', 'densecl')
#: part of every study-stage fingerprint
STUDY_VERSION = 1


@dataclass(frozen=True)
class StudySettings:
    """What the study runs.

    Attributes:
        name (str): ``'full'``, ``'quick'`` or ``'calibration'``.
        budgets (tuple[int]): pre-training iterations, one separate run
            each. Defaults to ``(250, 1000, 2000)`` (with two jobs, the
            study fits a 3-hour session on this 2-core machine; add
            4000 with ``--budgets``, finished runs are reused).
        seeds (tuple[int]): seeds of the pre-training and fine-tuning runs
            (and of the random init). Defaults to ``(0, 1, 2)``.
        densecl_start_fraction (float): DenseCL's dense loss is switched on
            after this share of the budget (the demo config: 16 of 160).
            Defaults to 0.1.
        pretrain_batch_size (int, optional): None keeps the config's (16).
        detection_iters (int, optional): None keeps the config's (60).
        segmentation_iters (int, optional): None keeps the config's (120).
        finetune_batch_size (int, optional): None keeps the configs'.
        val_max_images (int, optional): validate on this many images only.
        corr_seeds (tuple[int]): view pairs per held-out image (final
            evaluation). Defaults to the demo's ``(1000, ..., 1003)``.
        corr_max_images (int, optional): at most this many held-out images.
        corr_view_size (int): Defaults to 192 (6 x 6 C5 grid).
        curve_interval (int): iterations between two held-out evaluations
            during pre-training. Defaults to 250.
        curve_seeds (tuple[int], optional): view pairs per image of those
            evaluations. Defaults to None (``corr_seeds``: with all images
            the curve's last point is the final evaluation).
        train_corr_interval (int): iterations between two training-batch
            ``corr_acc`` values of DenseCL (``CorrespondenceHook``, about
            1 ms each). Defaults to 10.
        curve_max_images (int, optional): images of those evaluations.
        probe_max_images (int, optional): linear-probe images (None: 200).
        probe_folds (int): cross-validation folds. Defaults to 5.
        probe_size (int): probe images are resized to this. Defaults to 80
            (the pre-training view size).
        keep_runner_checkpoints (bool): keep the Runner's ``iter_N.pth``
            (optimizer state, ~2x the weights). Defaults to False.
    """
    name: str = 'full'
    budgets: Sequence[int] = (250, 1000, 2000)
    seeds: Sequence[int] = (0, 1, 2)
    densecl_start_fraction: float = 0.1
    pretrain_batch_size: Optional[int] = None
    detection_iters: Optional[int] = None
    segmentation_iters: Optional[int] = None
    finetune_batch_size: Optional[int] = None
    val_max_images: Optional[int] = None
    corr_seeds: Sequence[int] = (1000, 1001, 1002, 1003)
    corr_max_images: Optional[int] = None
    corr_view_size: int = 192
    curve_interval: int = 250
    curve_seeds: Optional[Sequence[int]] = None
    train_corr_interval: int = 10
    curve_max_images: Optional[int] = None
    probe_max_images: Optional[int] = None
    probe_folds: int = 5
    probe_size: int = 80
    keep_runner_checkpoints: bool = False


FULL = StudySettings()
QUICK = StudySettings(
    name='quick', budgets=(2, 4), seeds=(0, 1), pretrain_batch_size=8,
    detection_iters=1, segmentation_iters=1, finetune_batch_size=2,
    val_max_images=1, corr_seeds=(1000, ), corr_max_images=2,
    curve_interval=2, curve_max_images=1, train_corr_interval=1,
    probe_max_images=40,
    probe_folds=2)
#: a short real measurement of the full study's per-iteration costs
CALIBRATION = replace(FULL, name='calibration', budgets=(20, ), seeds=(0, ),
                      detection_iters=10, segmentation_iters=10,
                      curve_interval=10)


def densecl_start_iters(budget: int, fraction: float) -> int:
    """Iterations before DenseCL's dense loss starts (at least 1 when the
    budget allows one warm-up iteration)."""
    return min(max(1, round(fraction * budget)), max(budget - 1, 0))


class _StudyDemo(Demo):
    """The demo's stages for one (seed, budget), with the curve hooks added
    to the pre-training configs."""

    curve: Dict[str, Any] = {}

    def pretrain_config(self, algo: str) -> Config:
        cfg = super().pretrain_config(algo)
        c = self.curve
        hooks = list(cfg.get('custom_hooks') or [])
        hooks.append(dict(
            type='densecl_plugin.StudyCurveHook', images=c['images'],
            out_file=osp.join(self.work_dir, 'pretrain', algo, 'curve.json'),
            interval=c['interval'], seeds=c['seeds'],
            view_size=c['view_size']))
        if algo == 'densecl':
            hooks.append(dict(type='densecl_plugin.CorrespondenceHook',
                              interval=c['train_interval']))
        cfg.custom_hooks = hooks
        return cfg


class Study(StagedRun):
    """The study's stages, sharing paths, settings and the console.

    Args:
        work_dir (str): results go here.
        data_dir (str): the demo's data sets (built if missing).
        cache_dir (str, optional): downloaded wheels.
        settings (StudySettings): :data:`FULL`, :data:`QUICK` or custom.
        force (bool): redo every stage. Defaults to False.
        configs_dir (str, optional): ``configs/``. Defaults to the demo's.
        console (TextIO, optional): Defaults to ``sys.stdout``.
        show_progress (bool): progress bars. Defaults to True.
    """

    LOG_NAME = 'study.log'
    ANNOUNCE_REUSE = False  # the study's progress lines say it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.costs: Dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._planned = 0.0
        self._done_estimate = 0.0
        self._ran_estimate = self._ran_actual = 0.0
        self._seen = 0

    # data and helpers ----------------------------------------------------
    def data(self) -> Dict[str, Any]:
        """Build or reuse the demo's data sets."""
        self.manifest = prepare_demo_data(self.data_dir, self.cache_dir,
                                          show_progress=self.show_progress)
        return self.manifest

    def held_out(self, limit: Optional[int]) -> List[str]:
        """The demo's held-out images (the first ``limit``)."""
        images = list(self.manifest['held_out'])
        return images[:limit] if limit else images

    def demo(self, seed: int, tag: str, budget: int) -> _StudyDemo:
        """The demo's stages for ``seed`` and ``budget``, in
        ``<work_dir>/seed<seed>/<tag>``."""
        s = self.settings
        ds = DemoSettings(
            name=f'study-{s.name}', pretrain_iters=budget,
            densecl_start_iters=densecl_start_iters(
                budget, s.densecl_start_fraction),
            detection_iters=s.detection_iters,
            segmentation_iters=s.segmentation_iters,
            pretrain_batch_size=s.pretrain_batch_size,
            finetune_batch_size=s.finetune_batch_size,
            val_max_images=s.val_max_images, seed=seed)
        demo = _StudyDemo(osp.join(self.work_dir, f'seed{seed}', tag),
                          self.data_dir, self.cache_dir, ds, force=self.force,
                          configs_dir=self.configs_dir, console=self.console,
                          show_progress=self.show_progress)
        demo.manifest = self.manifest
        demo.log_file = self.log_file
        demo.stage_status = self.stage_status  # one record of all stages
        demo.curve = dict(images=self.held_out(s.curve_max_images),
                          interval=s.curve_interval,
                          seeds=list(s.curve_seeds or s.corr_seeds),
                          view_size=s.corr_view_size,
                          train_interval=s.train_corr_interval)
        return demo

    def _progress(self, what: str, cost: float) -> None:
        """Count a finished step (its estimated ``cost``) and print the
        study's progress and ETA: the estimated remaining seconds, scaled
        by how fast the stages that ran (not reused) went against their
        estimate."""
        new = self.stage_status[self._seen:]
        self._seen = len(self.stage_status)
        self._done_estimate += cost
        if any(not st['skipped'] for st in new):
            self._ran_estimate += cost
            self._ran_actual += sum(st['wall_time'] for st in new
                                    if not st['skipped'])
        speed = self._ran_actual / self._ran_estimate \
            if self._ran_estimate > 0 else 1.0
        eta = max(self._planned - self._done_estimate, 0.0) * speed
        frac = min(self._done_estimate / self._planned, 1.0) \
            if self._planned else 1.0
        elapsed = time.perf_counter() - self._t0
        self.say(f'  study {100 * frac:5.1f}% | {what} | elapsed '
                 f'{fmt_duration(elapsed)}, ETA {fmt_duration(eta)}')

    # evaluation stages ---------------------------------------------------
    def evaluate(self, demo: Demo, init: str, algo: str, checkpoint: str,
                 key: Dict[str, Any], out_dir: str) -> Dict[str, Any]:
        """Held-out correspondence and linear probe of one checkpoint.

        Args:
            demo (Demo): for the pre-training config of ``algo``.
            init (str): the arm.
            algo (str): the model the checkpoint belongs to.
            checkpoint (str): a full pre-training state dict.
            key (dict): what identifies the checkpoint (digests,
                fingerprints), part of the fingerprints.
            out_dir (str): where the two ``result.json`` go.
        """
        s = self.settings
        images = self.held_out(s.corr_max_images)
        corr_expected = fingerprint(
            kind='correspondence', study_version=STUDY_VERSION,
            checkpoint=key, images=images, seeds=list(s.corr_seeds),
            view_size=s.corr_view_size)
        probe_expected = fingerprint(
            kind='probe', study_version=STUDY_VERSION, checkpoint=key,
            max_images=s.probe_max_images, folds=s.probe_folds,
            size=s.probe_size)
        cfg = demo.pretrain_config(algo)

        def corr() -> Dict[str, Any]:
            from densecl_plugin.demo.correspondence_eval import (
                chance_accuracy, held_out_correspondence)
            from densecl_plugin.visualization import build_model
            with quiet_logs(self.log_file):
                model = build_model(cfg, checkpoint)
                result = held_out_correspondence(
                    model, cfg, images, s.corr_seeds, s.corr_view_size,
                    desc=f'correspondence {init}' if self.show_progress
                    else None)
            result.update(chance=chance_accuracy(result['grid']),
                          checkpoint=checkpoint, init=init)
            return result

        def probe() -> Dict[str, Any]:
            from densecl_plugin.visualization import build_model
            from .probe import (PROBE_DATA, linear_probe, pooled_features,
                                probe_data)
            with quiet_logs(self.log_file):
                model = build_model(cfg, checkpoint)
                images_, labels = probe_data(s.probe_max_images)
                pre = cfg.model.data_preprocessor
                feats = pooled_features(model, images_, s.probe_size,
                                        pre['mean'], pre['std'])
                result = linear_probe(feats, labels, s.probe_folds)
            result.update(data=PROBE_DATA, num_images=len(labels),
                          folds=s.probe_folds, checkpoint=checkpoint,
                          init=init)
            return result

        return dict(
            correspondence=self._stage(
                f'correspondence {init}',
                osp.join(out_dir, 'correspondence', 'result.json'),
                corr_expected, corr),
            probe=self._stage(f'probe {init}',
                              osp.join(out_dir, 'probe', 'result.json'),
                              probe_expected, probe))

    # one arm -------------------------------------------------------------
    def finetune_all(self, demo: Demo, init: str,
                     pretrained: Dict[str, Dict[str, Any]]
                     ) -> Dict[str, Dict[str, Any]]:
        """Both downstream tasks from ``init``."""
        return {task: demo.finetune(task, init, pretrained)
                for task in TASKS}

    def run_budget(self, seed: int, budget: int) -> Dict[str, Any]:
        """Pre-train both arms at ``budget`` and evaluate them."""
        demo = self.demo(seed, f'iters{budget}', budget)
        out: Dict[str, Any] = {}
        for algo in ALGOS:
            pre = demo.pretrain(algo)
            self._prune(pre)
            self._progress(f'seed {seed}, {budget} it: pre-train {algo}',
                           self._cost_pretrain(algo, budget))
            out[algo] = dict(pretrain=pre)
        for algo in ALGOS:
            pre = out[algo]['pretrain']
            out[algo]['finetune'] = self.finetune_all(demo, algo,
                                                      {algo: pre})
            self._progress(f'seed {seed}, {budget} it: fine-tune {algo}',
                           self._cost_finetune())
            key = dict(pretrain=pre['fingerprint'],
                       backbone=pre['backbone_sha256'])
            out[algo].update(self.evaluate(
                demo, algo, algo, pre['checkpoint'], key,
                osp.join(demo.work_dir, 'eval', algo)))
            self._progress(f'seed {seed}, {budget} it: evaluate {algo}',
                           self._cost_eval())
            curve_file = osp.join(demo.work_dir, 'pretrain', algo,
                                  'curve.json')
            out[algo]['curve'] = _read_json(curve_file)
        return out

    def run_random(self, seed: int, densecl_pre: Dict[str, Any]
                   ) -> Dict[str, Any]:
        """The random init of ``seed``: fine-tuned from scratch
        (``init_cfg=None``), its correspondence and probe measured on the
        exact initial weights of that seed's DenseCL run."""
        budget = min(self.settings.budgets)
        demo = self.demo(seed, 'random', budget)
        out: Dict[str, Any] = dict(finetune=self.finetune_all(demo, 'random',
                                                              {}))
        self._progress(f'seed {seed}: fine-tune random init',
                       self._cost_finetune())
        init_ckpt = densecl_pre['init_checkpoint']
        out.update(self.evaluate(demo, 'random', 'densecl', init_ckpt,
                                 dict(init=file_sha256(init_ckpt)),
                                 osp.join(demo.work_dir, 'eval', 'random')))
        self._progress(f'seed {seed}: evaluate random init',
                       self._cost_eval())
        return out

    def _prune(self, pre: Dict[str, Any]) -> None:
        """Delete the Runner's checkpoints of a finished pre-training (the
        study reads ``weights.pth`` / ``backbone.pth`` only)."""
        if self.settings.keep_runner_checkpoints:
            return
        work = osp.dirname(pre['checkpoint'])
        for path in glob.glob(osp.join(work, 'iter_*.pth')) + [
                osp.join(work, 'last_checkpoint')]:
            if osp.exists(path):
                os.remove(path)

    # costs ---------------------------------------------------------------
    def _cost_pretrain(self, algo: str, budget: int) -> float:
        c = self.costs
        return c[f'pretrain_{algo}_per_iter'] * budget + \
            c['pretrain_overhead'] + c['curve_per_pair'] * \
            self._curve_pairs() * (budget // self.settings.curve_interval + 2)

    def _curve_pairs(self) -> int:
        """View pairs of one held-out curve evaluation."""
        s = self.settings
        n = len(self.manifest.get('held_out', ())) or NUM_HELD_OUT
        images = min(s.curve_max_images or n, n)
        return images * len(s.curve_seeds or s.corr_seeds)

    def _cost_finetune(self) -> float:
        c, s = self.costs, self.settings
        det = s.detection_iters or 60
        seg = s.segmentation_iters or 120
        return c['detection_per_iter'] * det + c['detection_fixed'] + \
            c['segmentation_per_iter'] * seg + c['segmentation_fixed']

    def _cost_eval(self) -> float:
        return self.costs['correspondence_per_stage'] + \
            self.costs['probe_per_stage']

    def planned_cost(self, jobs: int = 1) -> float:
        """The estimated seconds of the whole plan (:attr:`costs`), with
        ``jobs`` parallel shards: the most loaded shard's. Defaults to 1."""
        units = self.units()
        costs = [self.unit_cost(*u) for u in units]
        if jobs <= 1:
            return sum(costs)
        owner = assign_shards(units, costs, jobs)
        return max(sum(c for u, c in zip(units, costs) if owner[u] == k)
                   for k in range(jobs))

    def units(self) -> List[Tuple[int, int]]:
        """The plan's ``(seed, budget)`` units in run order (smallest
        budget first). Each unit pre-trains and evaluates both arms; the
        unit with a seed's smallest budget also runs that seed's random
        init (it is evaluated on that DenseCL run's initial weights)."""
        s = self.settings
        return [(seed, budget) for budget in sorted(s.budgets)
                for seed in s.seeds]

    def unit_cost(self, seed: int, budget: int) -> float:
        """The estimated seconds of one unit (:meth:`units`)."""
        cost = sum(self._cost_pretrain(algo, budget) for algo in ALGOS) + \
            len(ALGOS) * (self._cost_finetune() + self._cost_eval())
        if budget == min(self.settings.budgets):
            cost += self._cost_finetune() + self._cost_eval()
        return cost

    # all -----------------------------------------------------------------
    def run(self, costs: Optional[Dict[str, float]] = None,
            shard: Optional[Tuple[int, int]] = None) -> Dict[str, Any]:
        """Run (or reuse) every stage, then write the report.

        Args:
            costs (dict, optional): per-unit costs for the ETA (see
                :func:`measured_costs`). Defaults to those measured in this
                work dir, else :data:`DEFAULT_COSTS`.
            shard (tuple[int, int], optional): ``(i, n)``: run only the
                units :func:`assign_shards` gives to shard ``i`` of ``n``
                (0-based) and write no report (:func:`run_study` with
                ``jobs=n`` runs the shards in parallel, then the report).
                Defaults to None (everything).

        Returns:
            dict: the report (see :func:`~.report.write_study_report`), or
            for a shard ``units`` (the ``(seed, budget)`` pairs it ran) and
            ``wall_time``.
        """
        from .report import write_study_report
        s = self.settings
        os.makedirs(self.work_dir, exist_ok=True)
        self.costs = costs or measured_costs(self.work_dir) or DEFAULT_COSTS
        units = self.units()
        what = ''
        if shard is not None:
            owner = assign_shards(
                units, [self.unit_cost(*u) for u in units], shard[1])
            units = [u for u in units if owner[u] == shard[0]]
            what = f' shard {shard[0] + 1}/{shard[1]}: units {units};'
        self._planned = sum(self.unit_cost(*u) for u in units)
        self.say(f'Small-scale study ({s.name}): budgets {list(s.budgets)}, '
                 f'seeds {list(s.seeds)};{what} work dir {self.work_dir}, '
                 f'logs in {self.log_file}')
        self.say(f'  estimated wall time of the whole plan: '
                 f'{fmt_duration(self._planned)} (costs: '
                 f'{self.costs.get("source", "defaults")})')
        self.data()
        results: Dict[str, Any] = dict(random={}, mocov2={}, densecl={})
        smallest = min(s.budgets)
        for seed, budget in units:
            out = self.run_budget(seed, budget)
            for algo in ALGOS:
                results[algo].setdefault(budget, {})[seed] = out[algo]
            if budget == smallest:
                results['random'][seed] = self.run_random(
                    seed, out['densecl']['pretrain'])
        wall = time.perf_counter() - self._t0
        if shard is not None:
            self.say(f'Shard {shard[0] + 1}/{shard[1]} done in '
                     f'{fmt_duration(wall)}.')
            return dict(units=units, wall_time=wall)
        return write_study_report(self, results, wall)


def assign_shards(units: Sequence[Tuple[int, int]],
                  costs: Sequence[float], n: int) -> Dict[Tuple[int, int],
                                                          int]:
    """Split the units over ``n`` parallel shards, balancing their
    estimated cost (longest first, each to the least-loaded shard; ties to
    the lower shard), so every shard process computes the same split.

    Args:
        units (Sequence[tuple[int, int]]): ``(seed, budget)`` pairs.
        costs (Sequence[float]): their estimated seconds.
        n (int): shards (>= 1).

    Returns:
        dict: unit -> shard index in ``[0, n)``.
    """
    if n < 1:
        raise ValueError(f'the number of shards must be >= 1, got {n}')
    if len(units) != len(costs):
        raise ValueError(f'{len(units)} units but {len(costs)} costs')
    load = [0.0] * n
    owner: Dict[Tuple[int, int], int] = {}
    order = sorted(range(len(units)), key=lambda i: (-costs[i], i))
    for i in order:
        k = min(range(n), key=lambda j: (load[j], j))
        owner[tuple(units[i])] = k
        load[k] += costs[i]
    return owner


def _run_shard(kwargs: Dict[str, Any], shard: Tuple[int, int],
               log_path: str, threads: int) -> None:
    """One shard process of :func:`run_study` (``jobs > 1``): its console
    goes to ``log_path``."""
    import threading

    import torch
    torch.set_num_threads(threads)
    parent = os.getppid()

    def orphaned() -> None:
        # the parent was killed (not even SIGTERM reached it): stop, the
        # finished stages stay and a rerun resumes
        while os.getppid() == parent:
            time.sleep(2.0)
        os._exit(3)

    threading.Thread(target=orphaned, daemon=True).start()
    with open(log_path, 'a', buffering=1) as console:
        sys.stdout = sys.stderr = console
        print(f'shard {shard[0] + 1}/{shard[1]}: pid {os.getpid()}',
              file=console)
        settings = kwargs.pop('settings')
        study = Study(kwargs.pop('work_dir'), kwargs.pop('data_dir'),
                      kwargs.pop('cache_dir'), settings, console=console,
                      show_progress=False, **kwargs)
        study.run(shard=shard)


def run_parallel(settings: StudySettings, work_dir: str, data_dir: str,
                 cache_dir: Optional[str], jobs: int, force: bool = False,
                 configs_dir: Optional[str] = None,
                 show_progress: bool = True, poll_s: float = 30.0
                 ) -> Dict[str, Any]:
    """Run the plan's units in ``jobs`` parallel processes (spawned, one
    torch thread each unless the cores allow more), then write the report
    in this process (every stage then is reused).

    Each shard's stage and ETA lines go to ``<work_dir>/shard<i>of<n>.log``;
    this process prints each shard's latest line every ``poll_s`` seconds.
    A failing shard stops nothing else; the error names its log, and a
    rerun resumes every shard where it stopped.
    """
    import multiprocessing as mp
    os.makedirs(work_dir, exist_ok=True)
    console = sys.stdout
    t0 = time.perf_counter()
    # build the data once, before the shards read it
    Study(work_dir, data_dir, cache_dir, settings,
          show_progress=show_progress).data()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    ctx = mp.get_context('spawn')
    procs, logs = [], []
    for i in range(jobs):
        log_path = osp.join(work_dir, f'shard{i + 1}of{jobs}.log')
        logs.append(log_path)
        kwargs = dict(settings=settings, work_dir=work_dir,
                      data_dir=data_dir, cache_dir=cache_dir, force=force,
                      configs_dir=configs_dir)
        proc = ctx.Process(target=_run_shard, name=f'study-shard{i + 1}',
                           args=(kwargs, (i, jobs), log_path, threads))
        proc.start()
        procs.append(proc)
    print(f'Small-scale study: {jobs} shards in parallel ({threads} torch '
          f'thread(s) each); their logs: {", ".join(logs)}', file=console,
          flush=True)
    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=poll_s / len(procs))
            for i, log_path in enumerate(logs):
                last = _last_line(log_path, '  study ')
                if last:
                    print(f'  shard {i + 1}/{jobs}:{last[7:]}',
                          file=console, flush=True)
    except BaseException:  # Ctrl-C, SIGTERM: no shard outlives us
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode]
    if failed:
        raise RuntimeError('study shard(s) failed: ' + '; '.join(
            f'shard {i + 1}/{jobs} exit code {code}, see {logs[i]}'
            for i, code in failed) + '; rerun to resume')
    study = Study(work_dir, data_dir, cache_dir, settings, force=False,
                  configs_dir=configs_dir, show_progress=show_progress)
    study._t0 = t0
    study.jobs, study.shard_threads = jobs, threads
    return study.run()


def _last_line(path: str, prefix: str) -> Optional[str]:
    """The last line of ``path`` that starts with ``prefix``."""
    if not osp.exists(path):
        return None
    with open(path, errors='replace') as f:
        lines = [ln.rstrip('\n') for ln in f if ln.startswith(prefix)]
    return lines[-1] if lines else None


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt_duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``42 s``."""
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f'{h} h {m:02d} min'
    return f'{m} min {sec:02d} s' if m else f'{sec} s'


#: per-unit costs (seconds, one core) used until a measurement exists;
#: measured here with ``--estimate`` (see the README section)
DEFAULT_COSTS = dict(
    source='built-in defaults (one core)',
    pretrain_mocov2_per_iter=1.0, pretrain_densecl_per_iter=1.0,
    pretrain_overhead=10.0, curve_per_pair=0.1,
    detection_per_iter=1.5, detection_fixed=30.0,
    segmentation_per_iter=1.0, segmentation_fixed=15.0,
    correspondence_per_stage=20.0, probe_per_stage=10.0)


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
        r = _read_json(path)
        if not r or 'stage_wall_time' not in r:
            continue
        if 'algo' in r and 'losses' in r:  # pre-training
            curve = _read_json(osp.join(osp.dirname(path), 'curve.json'))
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


def estimate(settings: StudySettings, work_dir: str, data_dir: str,
             cache_dir: Optional[str], calibrate: bool = True,
             console: Optional[TextIO] = None,
             show_progress: bool = True, jobs: int = 1) -> Dict[str, Any]:
    """The expected wall time of ``settings``' plan.

    Uses the costs measured in ``work_dir``; when there are none and
    ``calibrate``, first runs :data:`CALIBRATION` (a real 20-iteration
    pre-training per arm, 10-iteration fine-tunings, the full evaluation;
    a few minutes) in ``<work_dir>/calibration``.

    Returns:
        dict: ``seconds``, ``costs``, ``stages`` (how many) and ``text``.
    """
    console = console or sys.stdout
    costs = measured_costs(work_dir)
    if costs is None and calibrate:
        print(f'No measured costs in {work_dir}: calibrating '
              f'({CALIBRATION.budgets[0]} pre-training iterations per arm, '
              'the full evaluation) ...', file=console, flush=True)
        cal = Study(osp.join(work_dir, 'calibration'), data_dir, cache_dir,
                    CALIBRATION, console=console,
                    show_progress=show_progress)
        cal.run()
        costs = measured_costs(work_dir)
    study = Study(work_dir, data_dir, cache_dir, settings, console=console)
    study.costs = costs or DEFAULT_COSTS
    seconds = study.planned_cost(jobs)
    n_runs = len(settings.seeds) * (len(settings.budgets) * len(ALGOS) * 3 +
                                    2)
    c = study.costs
    text = (f'Estimated wall time of the {settings.name} study '
            f'(budgets {list(settings.budgets)}, seeds '
            f'{list(settings.seeds)}; {n_runs} training runs): '
            f'{fmt_duration(seconds)} on this machine'
            f'{f" with {jobs} parallel jobs" if jobs > 1 else ""}.\n'
            f'  pre-training {c["pretrain_mocov2_per_iter"]:.2f} s/iter '
            f'(MoCo v2), {c["pretrain_densecl_per_iter"]:.2f} s/iter '
            f'(DenseCL); held-out curve {c["curve_per_pair"]:.2f} s per '
            f'view pair ({study._curve_pairs()} pairs a point); '
            f'detection {c["detection_per_iter"]:.2f} s/iter + '
            f'{c["detection_fixed"]:.0f} s; segmentation '
            f'{c["segmentation_per_iter"]:.2f} s/iter + '
            f'{c["segmentation_fixed"]:.0f} s; correspondence '
            f'{c["correspondence_per_stage"]:.0f} s and probe '
            f'{c["probe_per_stage"]:.0f} s per checkpoint.\n'
            f'  costs: {c["source"]}')
    print(text, file=console, flush=True)
    return dict(seconds=seconds, costs=c, stages=n_runs, text=text,
                settings=asdict(settings))


def run_study(quick: bool = False, force: bool = False,
              work_dir: Optional[str] = None, data_dir: str = 'data/demo',
              cache_dir: Optional[str] = 'data/cache',
              budgets: Optional[Sequence[int]] = None,
              seeds: Optional[Sequence[int]] = None,
              only_estimate: bool = False, configs_dir: Optional[str] = None,
              show_progress: bool = True, jobs: int = 1) -> Dict[str, Any]:
    """Run (or resume) the study, or only estimate its wall time.

    Args:
        quick (bool): :data:`QUICK` (a smoke run). Defaults to False.
        force (bool): redo finished stages. Defaults to False.
        work_dir (str, optional): Defaults to
            ``work_dirs/small_scale_study`` (``..._quick`` when ``quick``).
        data_dir (str): the demo's data. Defaults to ``'data/demo'``.
        cache_dir (str, optional): wheel cache. Defaults to ``'data/cache'``.
        budgets (Sequence[int], optional): override the budgets.
        seeds (Sequence[int], optional): override the seeds.
        only_estimate (bool): print the expected wall time (calibrating
            first if nothing was measured yet) and stop. Defaults to False.
        configs_dir (str, optional): ``configs/``.
        show_progress (bool): progress bars. Defaults to True.
        jobs (int): run the plan in this many parallel processes
            (:func:`run_parallel`; e.g. the number of cores: the full
            study took 2 h 00 min with 2 jobs on 2 cores, against a
            one-job estimate of 3 h 53 min). Defaults to 1.

    Returns:
        dict: the report (``paths``, ...) or the estimate.
    """
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, got {jobs}')
    settings = QUICK if quick else FULL
    if budgets:
        settings = replace(settings, budgets=tuple(int(b) for b in budgets))
    if seeds:
        settings = replace(settings, seeds=tuple(int(s) for s in seeds))
    if min(settings.budgets) < 1 or len(set(settings.seeds)) != len(
            settings.seeds):
        raise ValueError(f'budgets must be >= 1 and seeds distinct, got '
                         f'{settings.budgets}, {settings.seeds}')
    work_dir = work_dir or osp.join(
        'work_dirs', 'small_scale_study_quick' if quick
        else 'small_scale_study')
    if only_estimate:
        return estimate(settings, work_dir, data_dir, cache_dir,
                        show_progress=show_progress, jobs=jobs)
    if jobs > 1:
        return run_parallel(settings, work_dir, data_dir, cache_dir, jobs,
                            force=force, configs_dir=configs_dir,
                            show_progress=show_progress)
    study = Study(work_dir, data_dir, cache_dir, settings, force=force,
                  configs_dir=configs_dir, show_progress=show_progress)
    return study.run()


__all__ = ['ARMS', 'CALIBRATION', 'DATA_SEED', 'FULL', 'QUICK', 'Study',
           'StudySettings', 'assign_shards', 'estimate', 'fmt_duration',
           'measured_costs', 'run_parallel', 'run_study']
