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
- a linear probe on frozen pooled C5 features (:mod:`.probe`);
- a frozen-feature dense probe: a per-pixel linear classifier on C4 and on
  C5, on the nuclei and on tree-crown masks (:mod:`.dense_probe`);
- view retrieval: nearest-neighbour top-1 of the embeddings and of pooled
  C5 between two fresh views of 128 pool images
  (:mod:`densecl_lab.analysis.view_pair_probe`).

During each pre-training, :class:`~.curve_hook.StudyCurveHook` records the
held-out correspondence accuracy every ``curve_interval`` iterations (and
DenseCL's training-batch ``corr_acc`` from ``CorrespondenceHook``).

The stages are the demo's (:class:`~densecl_lab.demo.Demo`), so each
writes a ``result.json`` with a fingerprint of its inputs and is reused when
a later invocation has the same fingerprint: a stopped study resumes at the
run it was in. :func:`estimate` predicts the wall time of a plan from
per-iteration costs measured in finished stages (or a short calibration;
the cost model is :mod:`.cost`); ``jobs > 1`` runs the plan in parallel
shards (:mod:`.shards`).
"""
import glob
import os
import os.path as osp
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import (Any, Callable, Dict, List, NamedTuple, Optional, Sequence,
                    TextIO, Tuple)

from mmengine.config import Config

from densecl_lab.demo.data import DATA_SEED, held_out_images, prepare_demo_data
from densecl_lab.demo.runs import quiet_logs
from densecl_lab.demo.stages import (ALGOS, TASKS, Demo, DemoSettings,
                                     StageSettings)
from densecl_lab.utils.hashing import file_sha256
from densecl_lab.utils.staged_run import StagedRun, fingerprint, try_load_json
from .cost import (DEFAULT_COSTS, NUM_HELD_OUT, CostModel, fmt_duration,
                   measured_costs)
from .curve_hook import StudyCurveHook  # noqa: F401 (registers the hook)
from .dense_probe import DENSE_PROBE_VERSION
from .dense_probe import WEIGHT_DECAY as DENSE_WEIGHT_DECAY
from .shards import assign_shards, run_parallel

#: the arms, in report order
ARMS = ('random', 'mocov2', 'densecl')
#: part of every study-stage fingerprint
STUDY_VERSION = 1


@dataclass(frozen=True)
class StudySettings(StageSettings):
    """What the study runs: :class:`~densecl_lab.demo.stages.StageSettings`
    (passed on to the demo's stages) and these.

    Attributes:
        name (str): ``'full'``, ``'quick'`` or ``'calibration'``. Defaults
            to ``'full'``.
        budgets (tuple[int]): pre-training iterations, one separate run
            each. Defaults to ``(250, 1000, 2000)`` (with two jobs, the
            study fits a 3-hour session on this 2-core machine; add
            4000 with ``--budgets``, finished runs are reused).
        seeds (tuple[int]): seeds of the pre-training and fine-tuning runs
            (and of the random init). Defaults to ``(0, 1, 2)``.
        densecl_start_fraction (float): DenseCL's dense loss is switched on
            after this share of the budget (the demo config: 16 of 160).
            Defaults to 0.1.
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
        dense_probe_size (int): dense-probe images and label grids are
            resized to this (C4 10 x 10, C5 5 x 5 at 160). Defaults to 160.
        dense_probe_max_images (int, optional): the first this many images
            of each split of each dense-probe set. Defaults to None (all).
        dense_probe_iters (int): L-BFGS iterations of each dense-probe
            classifier. Defaults to 100.
        retrieval_images (int): pool images (evenly spaced over the sorted
            files) of the view-retrieval stage. Defaults to 128.
        retrieval_seed (int): view ``i`` of that stage is drawn with seed
            ``retrieval_seed + i`` (far from any training draw). Defaults
            to 10000.
        keep_runner_checkpoints (bool): keep the Runner's ``iter_N.pth``
            (optimizer state, ~2x the weights). Defaults to False.
    """
    name: str = 'full'
    budgets: Sequence[int] = (250, 1000, 2000)
    seeds: Sequence[int] = (0, 1, 2)
    densecl_start_fraction: float = 0.1
    curve_interval: int = 250
    curve_seeds: Optional[Sequence[int]] = None
    train_corr_interval: int = 10
    curve_max_images: Optional[int] = None
    probe_max_images: Optional[int] = None
    probe_folds: int = 5
    probe_size: int = 80
    dense_probe_size: int = 160
    dense_probe_max_images: Optional[int] = None
    dense_probe_iters: int = 100
    retrieval_images: int = 128
    retrieval_seed: int = 10000
    keep_runner_checkpoints: bool = False


FULL = StudySettings()
QUICK = StudySettings(
    name='quick', budgets=(2, 4), seeds=(0, 1), pretrain_batch_size=8,
    detection_iters=1, segmentation_iters=1, finetune_batch_size=2,
    val_max_images=1, corr_seeds=(1000, ), corr_max_images=2,
    curve_interval=2, curve_max_images=1, train_corr_interval=1,
    probe_max_images=40,
    probe_folds=2, dense_probe_max_images=3, dense_probe_iters=10,
    retrieval_images=16)
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
    to the pre-training configs.

    Args:
        *args: those of :class:`~densecl_lab.demo.Demo`.
        curve (dict): the curve hooks' ``images``, ``interval``, ``seeds``,
            ``view_size`` and (``CorrespondenceHook``) ``train_interval``.
        **kwargs: those of :class:`~densecl_lab.demo.Demo`.
    """

    def __init__(self, *args: Any, curve: Dict[str, Any],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.curve = curve

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


class _Checkpoint(NamedTuple):
    """One checkpoint to evaluate: its arm, pre-training config, file, the
    key that identifies it in fingerprints, and its results folder."""
    init: str
    cfg: Config
    path: str
    key: Dict[str, Any]
    out_dir: str


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
        jobs (int): the parallel shards the stages ran in (the report says
            so). Defaults to 1.
        shard_threads (int, optional): torch threads of each shard.
            Defaults to None.
        started (float, optional): ``time.perf_counter()`` when the study
            started (:func:`~.shards.run_parallel` started before this
            object). Defaults to None (now).
    """

    LOG_NAME = 'study.log'
    ANNOUNCE_REUSE = False  # the study's progress lines say it

    def __init__(self, *args: Any, jobs: int = 1,
                 shard_threads: Optional[int] = None,
                 started: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs = jobs
        self.shard_threads = shard_threads
        self.costs: Dict[str, float] = {}
        self._t0 = time.perf_counter() if started is None else started
        self._planned = 0.0
        self._done_estimate = 0.0
        self._ran_estimate = self._ran_actual = 0.0
        self._seen = 0
        self._pool: Optional[List[str]] = None

    # data and helpers ----------------------------------------------------
    def data(self) -> Dict[str, Any]:
        """Build or reuse the demo's data sets."""
        self.manifest = prepare_demo_data(self.data_dir, self.cache_dir,
                                          show_progress=self.show_progress)
        return self.manifest

    def demo(self, seed: int, tag: str, budget: int) -> _StudyDemo:
        """The demo's stages for ``seed`` and ``budget``, in
        ``<work_dir>/seed<seed>/<tag>``."""
        s = self.settings
        shared = {f.name: getattr(s, f.name) for f in fields(StageSettings)}
        ds = DemoSettings(**dict(
            shared, name=f'study-{s.name}', pretrain_iters=budget,
            densecl_start_iters=densecl_start_iters(
                budget, s.densecl_start_fraction), seed=seed))
        curve = dict(images=held_out_images(self.manifest,
                                            s.curve_max_images),
                     interval=s.curve_interval,
                     seeds=list(s.curve_seeds or s.corr_seeds),
                     view_size=s.corr_view_size,
                     train_interval=s.train_corr_interval)
        return _StudyDemo(osp.join(self.work_dir, f'seed{seed}', tag),
                          self.data_dir, self.cache_dir, ds, force=self.force,
                          configs_dir=self.configs_dir, console=self.console,
                          show_progress=self.show_progress, parent=self,
                          curve=curve)

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
        """Held-out correspondence, linear probe, dense probe and view
        retrieval of one checkpoint, each a stage of its own (run or reused
        by its fingerprint).

        Args:
            demo (Demo): for the pre-training config of ``algo``.
            init (str): the arm.
            algo (str): the model the checkpoint belongs to.
            checkpoint (str): a full pre-training state dict.
            key (dict): what identifies the checkpoint (digests,
                fingerprints), part of the fingerprints.
            out_dir (str): where the four ``<stage>/result.json`` go.
        """
        ck = _Checkpoint(init, demo.pretrain_config(algo), checkpoint, key,
                         out_dir)
        return dict(correspondence=self._correspondence(ck),
                    probe=self._linear_probe(ck),
                    dense_probe=self._dense_probe(ck),
                    retrieval=self._retrieval(ck))

    def _evaluation(self, what: str, folder: str, ck: '_Checkpoint',
                    expected: str,
                    compute: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        """Run or reuse one evaluation stage of ``ck``; its result records
        the checkpoint and the arm."""
        def run() -> Dict[str, Any]:
            with quiet_logs(self.log_file):
                result = compute()
            result.update(checkpoint=ck.path, init=ck.init)
            return result
        return self._stage(f'{what} {ck.init}',
                           osp.join(ck.out_dir, folder, 'result.json'),
                           expected, run)

    def _correspondence(self, ck: '_Checkpoint') -> Dict[str, Any]:
        """Held-out dense correspondence against the views' geometry."""
        from densecl_lab.demo.correspondence_eval import (
            chance_accuracy, checkpoint_correspondence)
        s = self.settings
        images = held_out_images(self.manifest, s.corr_max_images)
        expected = fingerprint(
            kind='correspondence', study_version=STUDY_VERSION,
            checkpoint=ck.key, images=images, seeds=list(s.corr_seeds),
            view_size=s.corr_view_size)

        def compute() -> Dict[str, Any]:
            _, result = checkpoint_correspondence(
                ck.cfg, ck.path, images, s.corr_seeds, s.corr_view_size,
                desc=f'correspondence {ck.init}' if self.show_progress
                else None)
            result.update(chance=chance_accuracy(result['grid']))
            return result
        return self._evaluation('correspondence', 'correspondence', ck,
                                expected, compute)

    def _linear_probe(self, ck: '_Checkpoint') -> Dict[str, Any]:
        """Linear probe on pooled C5 features (cross-validated)."""
        from densecl_plugin.apis.inference import build_model
        from .probe import (PROBE_DATA, linear_probe, pooled_features,
                            probe_data)
        s = self.settings
        expected = fingerprint(
            kind='probe', study_version=STUDY_VERSION, checkpoint=ck.key,
            max_images=s.probe_max_images, folds=s.probe_folds,
            size=s.probe_size)

        def compute() -> Dict[str, Any]:
            model = build_model(ck.cfg, ck.path)
            images, labels = probe_data(s.probe_max_images)
            pre = ck.cfg.model.data_preprocessor
            feats = pooled_features(model, images, s.probe_size,
                                    pre['mean'], pre['std'])
            result = linear_probe(feats, labels, s.probe_folds)
            result.update(data=PROBE_DATA, num_images=len(labels),
                          folds=s.probe_folds)
            return result
        return self._evaluation('probe', 'probe', ck, expected, compute)

    def _dense_probe(self, ck: '_Checkpoint') -> Dict[str, Any]:
        """Per-pixel linear probe on frozen C4 / C5 features."""
        from densecl_plugin.apis.inference import build_model
        from .dense_probe import DENSE_SETS, dense_probe
        s = self.settings
        pre = ck.cfg.model.data_preprocessor
        expected = fingerprint(
            kind='dense_probe', study_version=STUDY_VERSION,
            checkpoint=ck.key, version=DENSE_PROBE_VERSION,
            size=s.dense_probe_size, max_images=s.dense_probe_max_images,
            iters=s.dense_probe_iters, weight_decay=DENSE_WEIGHT_DECAY,
            preprocessor=pre,
            data={k: self.manifest.get(k)
                  for k in ('seed', 'detection', 'segmentation')})

        def compute() -> Dict[str, Any]:
            model = build_model(ck.cfg, ck.path)
            result = dense_probe(
                model, self.manifest, s.dense_probe_size, pre['mean'],
                pre['std'], bool(pre.get('to_rgb',
                                         pre.get('bgr_to_rgb', False))),
                s.dense_probe_max_images, s.dense_probe_iters)
            result.update(kind='dense_probe', data=DENSE_SETS)
            return result
        return self._evaluation('dense probe', 'dense_probe', ck, expected,
                                compute)

    def _retrieval(self, ck: '_Checkpoint') -> Dict[str, Any]:
        """View-pair retrieval on fresh views of the pool."""
        from densecl_lab.analysis.view_pair_probe import probe_model
        from densecl_plugin.apis.inference import build_model
        s = self.settings
        pool = self._retrieval_images()
        expected = fingerprint(
            kind='retrieval', study_version=STUDY_VERSION, checkpoint=ck.key,
            images=pool, seed=s.retrieval_seed, bn='train',
            pipeline=ck.cfg.train_dataloader.dataset.pipeline,
            preprocessor=ck.cfg.model.data_preprocessor)

        def compute() -> Dict[str, Any]:
            model = build_model(ck.cfg, ck.path)
            result = probe_model(model, ck.cfg, pool, s.retrieval_seed,
                                 bn='train')
            result.update(kind='retrieval', num_images=len(pool),
                          seed=s.retrieval_seed, bn='train')
            return result
        return self._evaluation('retrieval', 'retrieval', ck, expected,
                                compute)

    def _retrieval_images(self) -> List[str]:
        """The view-retrieval images: :attr:`StudySettings.retrieval_images`
        evenly spaced over the sorted files of the unlabeled pool."""
        from densecl_lab.analysis.view_pair_probe import folder_images
        if self._pool is None:
            self._pool = folder_images(self.manifest['unlabeled']['root'],
                                       self.settings.retrieval_images)
        return self._pool

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
                           self.cost_model().pretrain(algo, budget))
            out[algo] = dict(pretrain=pre)
        for algo in ALGOS:
            pre = out[algo]['pretrain']
            out[algo]['finetune'] = self.finetune_all(demo, algo,
                                                      {algo: pre})
            self._progress(f'seed {seed}, {budget} it: fine-tune {algo}',
                           self.cost_model().finetune())
            key = dict(pretrain=pre['fingerprint'],
                       backbone=pre['backbone_sha256'])
            out[algo].update(self.evaluate(
                demo, algo, algo, pre['checkpoint'], key,
                osp.join(demo.work_dir, 'eval', algo)))
            self._progress(f'seed {seed}, {budget} it: evaluate {algo}',
                           self.cost_model().evaluation())
            curve_file = osp.join(demo.work_dir, 'pretrain', algo,
                                  'curve.json')
            out[algo]['curve'] = try_load_json(curve_file)
        return out

    def run_random(self, seed: int, densecl_pre: Dict[str, Any]
                   ) -> Dict[str, Any]:
        """The random init of ``seed``: fine-tuned from scratch
        (``init_cfg=None``), its evaluations (:meth:`evaluate`) measured
        on the exact initial weights of that seed's DenseCL run (the neck's
        too, for the view retrieval)."""
        budget = min(self.settings.budgets)
        demo = self.demo(seed, 'random', budget)
        out: Dict[str, Any] = dict(finetune=self.finetune_all(demo, 'random',
                                                              {}))
        self._progress(f'seed {seed}: fine-tune random init',
                       self.cost_model().finetune())
        init_ckpt = densecl_pre['init_checkpoint']
        out.update(self.evaluate(demo, 'random', 'densecl', init_ckpt,
                                 dict(init=file_sha256(init_ckpt)),
                                 osp.join(demo.work_dir, 'eval', 'random')))
        self._progress(f'seed {seed}: evaluate random init',
                       self.cost_model().evaluation())
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
    def cost_model(self, costs: Optional[Dict[str, Any]] = None
                   ) -> CostModel:
        """The cost model of this plan with ``costs`` (defaults to
        :attr:`costs`) and the data's held-out images once read."""
        return CostModel(self.settings, self.costs if costs is None
                         else costs,
                         len(self.manifest.get('held_out', ()))
                         or NUM_HELD_OUT)

    def units(self) -> List[Tuple[int, int]]:
        """The plan's ``(seed, budget)`` units in run order (smallest
        budget first). Each unit pre-trains and evaluates both arms; the
        unit with a seed's smallest budget also runs that seed's random
        init (it is evaluated on that DenseCL run's initial weights)."""
        s = self.settings
        return [(seed, budget) for budget in sorted(s.budgets)
                for seed in s.seeds]

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
        model = self.cost_model()
        what = ''
        if shard is not None:
            owner = assign_shards(units, [model.unit(*u) for u in units],
                                  shard[1])
            units = [u for u in units if owner[u] == shard[0]]
            what = f' shard {shard[0] + 1}/{shard[1]}: units {units};'
        self._planned = model.plan(units)
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
    c = costs or DEFAULT_COSTS
    model = study.cost_model(c)
    seconds = model.plan(study.units(), jobs)
    n_runs = len(settings.seeds) * (len(settings.budgets) * len(ALGOS) * 3 +
                                    2)
    text = (f'Estimated wall time of the {settings.name} study '
            f'(budgets {list(settings.budgets)}, seeds '
            f'{list(settings.seeds)}; {n_runs} training runs): '
            f'{fmt_duration(seconds)} on this machine'
            f'{f" with {jobs} parallel jobs" if jobs > 1 else ""}.\n'
            f'  pre-training {c["pretrain_mocov2_per_iter"]:.2f} s/iter '
            f'(MoCo v2), {c["pretrain_densecl_per_iter"]:.2f} s/iter '
            f'(DenseCL); held-out curve {c["curve_per_pair"]:.2f} s per '
            f'view pair ({model.curve_pairs()} pairs a point); '
            f'detection {c["detection_per_iter"]:.2f} s/iter + '
            f'{c["detection_fixed"]:.0f} s; segmentation '
            f'{c["segmentation_per_iter"]:.2f} s/iter + '
            f'{c["segmentation_fixed"]:.0f} s; correspondence '
            f'{c["correspondence_per_stage"]:.0f} s, probe '
            f'{c["probe_per_stage"]:.0f} s, dense probe '
            f'{c["dense_probe_per_stage"]:.0f} s and retrieval '
            f'{c["retrieval_per_stage"]:.0f} s per checkpoint.\n'
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
            (:func:`~.shards.run_parallel`; e.g. the number of cores: the full
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
    kwargs = dict(work_dir=work_dir, data_dir=data_dir, cache_dir=cache_dir,
                  settings=settings, configs_dir=configs_dir)
    if jobs == 1:
        return Study(force=force, show_progress=show_progress,
                     **kwargs).run()
    started = time.perf_counter()
    # build the data once, before the shards read it
    Study(show_progress=show_progress, **kwargs).data()
    threads = run_parallel(Study, dict(kwargs, force=force), jobs, work_dir)
    # every stage is finished now: this run reuses them and writes the report
    return Study(show_progress=show_progress, jobs=jobs,
                 shard_threads=threads, started=started, **kwargs).run()


__all__ = ['ARMS', 'CALIBRATION', 'DATA_SEED', 'DEFAULT_COSTS', 'FULL',
           'QUICK', 'Study', 'StudySettings', 'assign_shards', 'estimate',
           'fmt_duration', 'measured_costs', 'run_parallel', 'run_study']
