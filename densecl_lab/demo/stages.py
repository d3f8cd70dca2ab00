# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``make demo``: the stages, their order, and which of them to skip.

1. **data**: real images and annotations from package wheels
   (:func:`~densecl_lab.demo.data.prepare_demo_data`);
2. **pre-train** MoCo v2 and DenseCL (same data, schedule, seed), then
   extract each backbone;
3. **fine-tune** a detector and a segmenter from random init, MoCo v2 and
   DenseCL (same config, schedule and seed; only ``model.init_cfg``
   differs);
4. **correspondence**: argmax correspondence accuracy on held-out views
   (random init vs trained), and a figure of DenseCL's matches; then the
   **dense features**: the first three principal components of each
   backbone's C5 on a few held-out images, as colours
   (:mod:`densecl_lab.analysis.dense_pca`);
5. **report**: one table (markdown + JSON) and the loss curves.

Every stage writes ``result.json`` with a *fingerprint* of its inputs (its
resolved config, settings, and the digests of the checkpoints it reads); a
later run skips a stage whose result has the same fingerprint, and redoes
it (and so everything downstream) when anything changed or ``force`` is set
(:class:`~densecl_lab.utils.staged_run.StagedRun`, shared with the
study).
Each training stage is a real MMEngine run of a config in ``configs/demo/``;
quick runs override only the iteration counts and use their own work dir.
"""
import copy
import math
import os
import os.path as osp
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from densecl_plugin.utils.auto_values import resolve_auto_values
from ..utils.hashing import file_sha256 as file_digest
from ..utils.staged_run import StagedRun, fingerprint
from .data import DATA_SEED, held_out_images, prepare_demo_data
from .report import (INIT_LABELS, INITS, format_markdown, infonce_curves,
                     plot_loss_curves, table_rows, write_report)
from .runs import quiet_logs, run_config

#: the demo's configs, relative to the configs folder
CONFIGS = dict(
    mocov2='demo/mocov2_resnet18_1xb16-coslr-640iters_demo-pool.py',
    densecl='demo/densecl_resnet18_1xb16-coslr-640iters_demo-pool.py',
    detection='demo/faster-rcnn_r18-fpn_1xb4-60iters_deepforest-voc.py',
    segmentation='demo/fcn_r18-d8_1xb8-120iters_stardist-nuclei.py')
#: the pre-training algorithms, in run order
ALGOS = ('mocov2', 'densecl')
#: the downstream tasks, in run order
TASKS = ('detection', 'segmentation')


@dataclass(frozen=True)
class StageSettings:
    """The settings of the demo's stages that the study sets too.

    ``None`` keeps the config's value.

    Attributes:
        name (str): what the run is called (``'full'``, ``'quick'``, ...).
        pretrain_batch_size (int, optional): pre-training batch size.
        detection_iters (int, optional): detector fine-tuning iterations.
        segmentation_iters (int, optional): segmenter fine-tuning iterations.
        finetune_batch_size (int, optional): fine-tuning batch size.
        val_max_images (int, optional): validate fine-tuned models on the
            first this many validation images only.
        corr_seeds (tuple[int]): view-pair seeds per held-out image.
        corr_max_images (int, optional): use at most this many held-out
            images.
        corr_view_size (int): view side of the correspondence evaluation
            (192: a 6 x 6 C5 grid).
    """
    name: str
    pretrain_batch_size: Optional[int] = None
    detection_iters: Optional[int] = None
    segmentation_iters: Optional[int] = None
    finetune_batch_size: Optional[int] = None
    val_max_images: Optional[int] = None
    corr_seeds: Sequence[int] = (1000, 1001, 1002, 1003)
    corr_max_images: Optional[int] = None
    corr_view_size: int = 192


@dataclass(frozen=True)
class DemoSettings(StageSettings):
    """How long each stage runs: :class:`StageSettings` and these.

    ``None`` keeps the config's value: the full demo runs the configs as
    they are; the quick demo only shortens them.

    Attributes:
        pretrain_iters (int, optional): pre-training iterations.
        densecl_start_iters (int, optional): iterations before DenseCL's
            dense loss is switched on (``DenseCLHook.start_iters``).
        figure_seed (int): seed of the two views in the figure.
        seed (int, optional): ``randomness.seed`` of the pre-training and
            fine-tuning runs. Defaults to None (the configs' seed, 0).
        pca_images (int): held-out images in the dense-feature picture
            (:func:`spread_over_folders`).
        pca_size (int): their side in px in that picture (384: 12 x 12 C5
            cells).
    """
    pretrain_iters: Optional[int] = None
    densecl_start_iters: Optional[int] = None
    figure_seed: int = 7
    seed: Optional[int] = None
    pca_images: int = 4
    pca_size: int = 384


FULL = DemoSettings('full')
QUICK = DemoSettings('quick', pretrain_iters=3, densecl_start_iters=1,
                     detection_iters=2, segmentation_iters=2,
                     pretrain_batch_size=8, finetune_batch_size=2,
                     val_max_images=3, corr_seeds=(1000, ),
                     corr_max_images=3)


def spread_over_folders(paths: Sequence[str], num: int) -> List[str]:
    """``num`` of ``paths``, taken in turn from each folder (in the order the
    folders first appear), each folder's files in their order: the
    dense-feature picture shows every kind of held-out image.

    Args:
        paths (Sequence[str]): image files.
        num (int): how many to take (all when fewer).

    Returns:
        list[str]: the chosen paths.
    """
    folders: Dict[str, List[str]] = {}
    for path in paths:
        folders.setdefault(osp.dirname(path), []).append(path)
    out: List[str] = []
    depth = 0
    while len(out) < min(num, len(paths)):
        for files in folders.values():
            if depth < len(files) and len(out) < num:
                out.append(files[depth])
        depth += 1
    return out


def set_max_iters(cfg: Config, iters: int) -> None:
    """Shorten (or lengthen) an iteration-based config to ``iters``.

    Sets ``train_cfg.max_iters`` (and ``val_interval``), moves scheduler
    ends and ``T_max`` that equalled the old length, clips warm-ups that
    would outlast the run, and the checkpoint interval.
    """
    if iters < 1:
        raise ValueError(f'iters must be >= 1, got {iters}')
    old = cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = iters
    if 'val_interval' in cfg.train_cfg:
        cfg.train_cfg.val_interval = iters
    schedulers = cfg.get('param_scheduler') or []
    for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
        for key in ('end', 'T_max'):
            if key in sched:
                sched[key] = iters if sched[key] == old else min(
                    sched[key], iters)
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint')
    if ckpt and ckpt.get('interval') == old:
        ckpt['interval'] = iters


def set_data_root(loader: dict, data_root: str) -> int:
    """Point every dataset in a dataloader config (wrappers included) at
    ``data_root``; returns how many were changed."""
    changed = 0

    def visit(node: Any) -> None:
        nonlocal changed
        if isinstance(node, dict):
            if 'data_root' in node:
                node['data_root'] = data_root
                changed += 1
            for key in ('dataset', 'datasets'):
                if key in node:
                    visit(node[key])
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(loader.get('dataset'))
    return changed


class Demo(StagedRun):
    """The demo's stages (:class:`StagedRun` with :class:`DemoSettings`,
    :data:`FULL` or :data:`QUICK`; the log is ``<work_dir>/demo.log``)."""

    LOG_NAME = 'demo.log'

    def config(self, key: str) -> Config:
        """Load one of :data:`CONFIGS`."""
        path = osp.join(self.configs_dir, CONFIGS[key])
        if not osp.isfile(path):
            raise FileNotFoundError(f'demo config {key!r} not found: {path}')
        return Config.fromfile(path)

    # stage 1 -------------------------------------------------------------
    def data(self) -> Dict[str, Any]:
        """Fetch the wheels and write the three data sets."""
        t0 = time.perf_counter()
        self.manifest = prepare_demo_data(self.data_dir, self.cache_dir,
                                          force=self.force,
                                          show_progress=self.show_progress)
        m = self.manifest
        verb = 'reused' if m['reused'] else 'built'
        det_imgs = sum(m['detection']['images'].values())
        det_boxes = sum(m['detection']['boxes'].values())
        seg_imgs = sum(m['segmentation']['images'].values())
        self.say(f'  data: {verb} {self.data_dir} in '
                 f'{time.perf_counter() - t0:.0f} s: '
                 f'{m["unlabeled"]["images"]} unlabeled images, '
                 f'{det_imgs} tree tiles ({det_boxes} boxes), '
                 f'{seg_imgs} nuclei tiles, {len(m["held_out"])} held out')
        return self.manifest

    # stage 2 -------------------------------------------------------------
    def pretrain_config(self, algo: str) -> Config:
        """The pre-training config of ``algo`` as the demo runs it."""
        cfg = self.config(algo)
        cfg.train_dataloader.dataset.data_root = \
            self.manifest['unlabeled']['root']
        if self.settings.pretrain_iters:
            set_max_iters(cfg, self.settings.pretrain_iters)
        if self.settings.pretrain_batch_size:
            cfg.train_dataloader.batch_size = \
                self.settings.pretrain_batch_size
        if algo == 'densecl' and self.settings.densecl_start_iters \
                is not None:
            for hook in cfg.get('custom_hooks', []):
                if hook.get('type') == 'DenseCLHook':
                    hook['start_iters'] = self.settings.densecl_start_iters
        if self.settings.seed is not None:
            cfg.randomness.seed = self.settings.seed
        # 'auto' values (queue, split BN, lr, warm-up) for the pool and one
        # process, as tools/train.py resolves them: the fingerprint, the
        # report and the run see the same numbers
        resolve_auto_values(cfg, world_size=1,
                            dataset_size=self.manifest['unlabeled'].get(
                                'images'))
        return cfg

    def pretrain(self, algo: str) -> Dict[str, Any]:
        """Pre-train ``algo`` and extract its backbone."""
        cfg = self.pretrain_config(algo)
        work = osp.join(self.work_dir, 'pretrain', algo)
        expected = fingerprint(config=cfg, data=self._data_key())

        def run() -> Dict[str, Any]:
            from densecl_plugin.converters import extract_backbone_weights
            shutil.rmtree(work, ignore_errors=True)  # no stale checkpoints
            # tensors-only weights before / after training (the Runner's own
            # iter_N.pth also holds the optimizer and the message hub)
            init_ckpt = osp.join(work, 'init.pth')
            final_ckpt = osp.join(work, 'weights.pth')
            record = run_config(cfg, work, f'pre-train {INIT_LABELS[algo]}',
                                self.log_file, init_checkpoint=init_ckpt,
                                final_checkpoint=final_ckpt,
                                show_progress=self.show_progress)
            backbone = osp.join(work, 'backbone.pth')
            extract_backbone_weights(final_ckpt, backbone,
                                     meta=dict(algo=algo))
            return dict(algo=algo, config=cfg.filename, checkpoint=final_ckpt,
                        runner_checkpoint=osp.join(
                            work, f'iter_{cfg.train_cfg.max_iters}.pth'),
                        init_checkpoint=init_ckpt, backbone=backbone,
                        backbone_sha256=file_digest(backbone),
                        iters=cfg.train_cfg.max_iters,
                        train_time=record.train_time,
                        wall_time=record.wall_time, losses=record.losses,
                        seed=cfg.randomness.seed)

        return self._stage(f'pre-train {INIT_LABELS[algo]}',
                           osp.join(work, 'result.json'), expected, run)

    # stage 3 -------------------------------------------------------------
    def finetune_config(self, task: str, backbone: Optional[str]) -> Config:
        """The ``task`` config as the demo runs it from ``backbone`` (None:
        random init)."""
        cfg = self.config(task)
        root = self.manifest[task]['data_root']
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            if cfg.get(key) is not None and not set_data_root(cfg[key], root):
                raise KeyError(f'{cfg.filename}: {key} has no data_root')
        iters = getattr(self.settings, f'{task}_iters')
        if iters:
            set_max_iters(cfg, iters)
        if self.settings.finetune_batch_size:
            cfg.train_dataloader.batch_size = \
                self.settings.finetune_batch_size
        if self.settings.val_max_images:
            cfg.val_dataloader.dataset.indices = self.settings.val_max_images
        if backbone is None:
            cfg.model.init_cfg = None
        else:
            cfg.model.init_cfg.checkpoint = backbone
        cfg.default_hooks.checkpoint = None  # the metrics are the result
        if self.settings.seed is not None:
            cfg.randomness.seed = self.settings.seed
        return cfg

    def finetune(self, task: str, init: str,
                 pretrained: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
        """Fine-tune the ``task`` model from ``init``."""
        backbone = None if init == 'random' else pretrained[init]['backbone']
        cfg = self.finetune_config(task, backbone)
        work = osp.join(self.work_dir, task, init)
        expected = fingerprint(
            config=cfg, data=self._data_key(),
            backbone=None if backbone is None else
            pretrained[init]['backbone_sha256'])
        name = f'{task} from {INIT_LABELS[init]}'

        def run() -> Dict[str, Any]:
            shutil.rmtree(work, ignore_errors=True)
            record = run_config(cfg, work, name, self.log_file,
                                show_progress=self.show_progress)
            if not record.metrics:
                raise RuntimeError(f'{name} gave no validation metrics; see '
                                   f'{self.log_file}')
            return dict(task=task, init=init, config=cfg.filename,
                        backbone=backbone, iters=cfg.train_cfg.max_iters,
                        metrics=record.metrics, train_time=record.train_time,
                        val_time=record.val_time, wall_time=record.wall_time,
                        seed=cfg.randomness.seed)

        return self._stage(name, osp.join(work, 'result.json'), expected, run)

    # stage 4 -------------------------------------------------------------
    def held_out_images(self) -> List[str]:
        """The held-out images of the correspondence evaluation."""
        return held_out_images(self.manifest, self.settings.corr_max_images)

    @staticmethod
    def compared_checkpoints(pretrained: Dict[str, Dict[str, Any]]
                             ) -> Dict[str, Tuple[str, str]]:
        """``init -> (algo, checkpoint)`` of the three backbones compared
        after pre-training: the exact initialisation DenseCL started from,
        MoCo v2 and DenseCL."""
        return dict(
            random=('densecl', pretrained['densecl']['init_checkpoint']),
            mocov2=('mocov2', pretrained['mocov2']['checkpoint']),
            densecl=('densecl', pretrained['densecl']['checkpoint']))

    def correspondence(self, pretrained: Dict[str, Dict[str, Any]]
                       ) -> Dict[str, Any]:
        """Correspondence accuracy of the random init, MoCo v2 and DenseCL
        backbones on held-out views, and the figure of DenseCL's matches."""
        s = self.settings
        work = osp.join(self.work_dir, 'correspondence')
        checkpoints = self.compared_checkpoints(pretrained)
        images = self.held_out_images()
        expected = fingerprint(
            checkpoints={k: file_digest(p) for k, (_, p) in
                         checkpoints.items()},
            images=images, seeds=list(s.corr_seeds),
            view_size=s.corr_view_size, figure_seed=s.figure_seed)

        def run() -> Dict[str, Any]:
            from .correspondence_eval import chance_accuracy
            shutil.rmtree(work, ignore_errors=True)
            result: Dict[str, Any] = dict(images=images,
                                          seeds=list(s.corr_seeds),
                                          figure_image=images[0])
            with quiet_logs(self.log_file):
                for init, (algo, ckpt) in checkpoints.items():
                    result[init] = self._correspondence_of(
                        init, algo, ckpt, images, images[0], work)
            result['chance'] = chance_accuracy(result['densecl']['grid'])
            return result

        bar = 'correspondence (held-out views)'
        self.say(f'  {bar}: {len(images)} images x '
                 f'{len(s.corr_seeds)} view pairs, 3 backbones')
        return self._stage(bar, osp.join(work, 'result.json'), expected, run)

    def dense_pca(self, pretrained: Dict[str, Dict[str, Any]]
                  ) -> Dict[str, Any]:
        """The first three principal components of the C5 features of the
        random init, MoCo v2 and DenseCL on a few held-out images, as
        colours (:func:`~densecl_lab.analysis.dense_pca.dense_pca_checkpoints`;
        one picture, ``dense_pca/dense_pca.png``)."""
        s = self.settings
        work = osp.join(self.work_dir, 'dense_pca')
        checkpoints = self.compared_checkpoints(pretrained)
        images = spread_over_folders(held_out_images(self.manifest),
                                     s.pca_images)
        expected = fingerprint(
            checkpoints={k: file_digest(p) for k, (_, p) in
                         checkpoints.items()},
            images=images, size=s.pca_size)

        def run() -> Dict[str, Any]:
            from densecl_lab.analysis.dense_pca import dense_pca_checkpoints
            shutil.rmtree(work, ignore_errors=True)
            with quiet_logs(self.log_file):
                return dense_pca_checkpoints(
                    [(INIT_LABELS[init], self.pretrain_config(algo), ckpt)
                     for init, (algo, ckpt) in checkpoints.items()],
                    images, osp.join(work, 'dense_pca.png'), s.pca_size)

        name = 'dense features (PCA of C5)'
        self.say(f'  {name}: {len(images)} held-out images, 3 backbones')
        return self._stage(name, osp.join(work, 'result.json'), expected, run)

    def _correspondence_of(self, init: str, algo: str, ckpt: str,
                           images: Sequence[str], figure_image: str,
                           out_dir: str) -> Dict[str, Any]:
        """Held-out accuracy of one backbone (and, for the random init and
        DenseCL, the figure of its matches on ``figure_image``)."""
        from densecl_lab.analysis.visualize_correspondence import \
            visualize_correspondence
        from .correspondence_eval import (checkpoint_correspondence,
                                          with_view_size)
        s = self.settings
        cfg = self.pretrain_config(algo)
        model, result = checkpoint_correspondence(
            cfg, ckpt, images, s.corr_seeds, s.corr_view_size,
            desc=f'correspondence {INIT_LABELS[init]}'
            if self.show_progress else None)
        if init in ('random', 'densecl'):
            summary = visualize_correspondence(
                with_view_size(cfg, s.corr_view_size), ckpt, figure_image,
                out_dir, seed=s.figure_seed, model=model, prefix=f'{init}_')
            result['figure'] = summary['files']
            result['figure_pair_accuracy'] = summary['argmax_accuracy']
        return result

    # stage 5 -------------------------------------------------------------
    def report(self, pretrained: Dict[str, Dict[str, Any]],
               finetuned: Dict[str, Dict[str, Dict[str, Any]]],
               corr: Dict[str, Any], wall_time: float,
               load: Dict[str, Any],
               pca: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Write the table, its notes and the loss curves (``pca``: the
        result of :meth:`dense_pca`, listed with the files)."""
        rows = table_rows(
            pretrain=pretrained,
            detection={i: r['metrics']
                       for i, r in finetuned['detection'].items()},
            segmentation={i: r['metrics']
                          for i, r in finetuned['segmentation'].items()},
            correspondence={i: corr[i] for i in INITS})
        curves: Dict[str, Any] = {}
        for algo in ALGOS:
            curves.update(infonce_curves(INIT_LABELS[algo],
                                         pretrained[algo]['losses']))
        queue_len = self.pretrain_config('densecl').model.queue_len
        curves = plot_loss_curves(curves,
                                  osp.join(self.work_dir, 'loss_curves.png'),
                                  chance=math.log(queue_len + 1))
        m, s = self.manifest, self.settings
        results = list(pretrained.values()) + [
            r for task in finetuned.values() for r in task.values()] + [corr]
        if pca is not None:
            results.append(pca)
        reused = sum(st['skipped'] for st in self.stage_status)
        det_cfg = finetuned['detection']['random']
        seg_cfg = finetuned['segmentation']['random']
        notes = [
            f'{s.name} run; seeds: pre-training '
            f'{pretrained["densecl"]["seed"]}, fine-tuning '
            f'{det_cfg["seed"]}, data splits {DATA_SEED}, correspondence '
            f'views {list(s.corr_seeds)}.',
            f'Pre-training: {pretrained["densecl"]["iters"]} iterations of '
            f'ResNet-18 on {m["unlabeled"]["images"]} unlabeled real images '
            '(same data, schedule and seed for both); time = training '
            'iterations only.',
            f'Detection: Faster R-CNN R18-FPN, {det_cfg["iters"]} '
            f'iterations, {sum(m["detection"]["images"].values())} deepforest '
            'tree tiles (VOC AP, area mode; AP50:95 = mean over IoU '
            '0.50:0.95).',
            f'Segmentation: FCN R18-D8, {seg_cfg["iters"]} iterations, '
            'stardist nuclei (background / nucleus mIoU).',
            f'Correspondence: share of argmax matches within one cell of the '
            f'geometric truth, {corr["densecl"]["num_pairs"]} held-out view '
            f'pairs at {corr["densecl"]["view_size"]} px '
            f'({"x".join(map(str, corr["densecl"]["grid"]))} grid; a random '
            f'guess scores {100 * corr["chance"]:.1f} %, matching each cell '
            f'to the same cell of the other view '
            f'{100 * corr["densecl"]["same_cell_accuracy"]:.1f} %); the '
            'random-init row is the exact initialisation DenseCL started '
            'from.',
            'One seed: differences between the arms smaller than the '
            'seed-to-seed spread cannot be read from this table (one seed '
            'of the full demo takes about 11 of its 20 minutes on 2 cores); '
            '`tools/benchmarks/small_scale_study.py` gives mean ± std over '
            'seeds and paired 95 % intervals per budget.',
            f'Wall time: the {len(results)} stages took '
            f'{sum(r["stage_wall_time"] for r in results):.0f} s when they '
            f'ran; this invocation {wall_time:.0f} s ({reused} of them '
            f'reused) on {os.cpu_count()} CPU cores, load average '
            f'{load["start"]:.1f} at start, {load["end"]:.1f} at end.',
        ]
        extra = dict(
            settings=asdict(s), data={k: v for k, v in m.items()
                                      if k != 'held_out'},
            pretrain={a: {k: v for k, v in pretrained[a].items()
                          if k != 'losses'} for a in ALGOS},
            finetune=finetuned, correspondence=corr, dense_pca=pca,
            stages=self.stage_status, wall_time=wall_time, load_average=load,
            files=dict(loss_curves=curves,
                       correspondence=corr['densecl'].get('figure', {}),
                       dense_pca=None if pca is None else pca['figure'],
                       log=self.log_file))
        paths = write_report(self.work_dir, rows, notes, extra)
        return dict(rows=rows, notes=notes, paths=paths, curves=curves)

    # all -----------------------------------------------------------------
    def run(self) -> Dict[str, Any]:
        """Run (or reuse) every stage and return the report."""
        t0 = time.perf_counter()
        load = dict(start=os.getloadavg()[0])
        os.makedirs(self.work_dir, exist_ok=True)
        steps = 5
        self.say(f'DenseCL demo ({self.settings.name}): work dir '
                 f'{self.work_dir}, logs in {self.log_file}')
        self.say(f'[1/{steps}] data')
        self.data()
        self.say(f'[2/{steps}] pre-training')
        pretrained = {a: self.pretrain(a) for a in ALGOS}
        self.say(f'[3/{steps}] fine-tuning')
        finetuned = {t: {i: self.finetune(t, i, pretrained) for i in INITS}
                     for t in TASKS}
        self.say(f'[4/{steps}] correspondence')
        corr = self.correspondence(pretrained)
        pca = self.dense_pca(pretrained)
        self.say(f'[5/{steps}] report')
        load['end'] = os.getloadavg()[0]
        report = self.report(pretrained, finetuned, corr,
                             time.perf_counter() - t0, load, pca)
        self.say('')
        self.say(format_markdown(report['rows'], report['notes']))
        self.say('Outputs:')
        for label, path in (
                ('table', report['paths']['markdown']),
                ('table (json)', report['paths']['json']),
                ('loss curves', report['curves']),
                ('DenseCL matches', corr['densecl']['figure']['matches']),
                ('random-init matches', corr['random']['figure']['matches']),
                ('dense features (PCA)', pca['figure']),
                ('logs', self.log_file)):
            self.say(f'  {label:20s} {path}')
        return report

    def _data_key(self) -> Dict[str, Any]:
        """What the trained stages depend on in the data."""
        m = copy.deepcopy(self.manifest)
        m.pop('reused', None)
        return m


def run_demo(quick: bool = False, force: bool = False,
             work_dir: Optional[str] = None, data_dir: str = 'data/demo',
             cache_dir: Optional[str] = 'data/cache',
             configs_dir: Optional[str] = None,
             show_progress: bool = True) -> Dict[str, Any]:
    """Run the whole demo (see the module docstring).

    Args:
        quick (bool): a few iterations per stage (a smoke run).
            Defaults to False.
        force (bool): redo finished stages. Defaults to False.
        work_dir (str, optional): results. Defaults to ``work_dirs/demo``
            (``work_dirs/demo_quick`` when ``quick``), so quick results never
            pass for full ones.
        data_dir (str): data sets. Defaults to ``'data/demo'``.
        cache_dir (str, optional): wheel cache. Defaults to ``'data/cache'``.
        configs_dir (str, optional): ``configs/``. Defaults to
            :func:`~densecl_lab.utils.staged_run.default_configs_dir`.
        show_progress (bool): draw progress bars. Defaults to True.

    Returns:
        dict: ``rows`` (the table), ``notes``, ``paths``.
    """
    settings = QUICK if quick else FULL
    work_dir = work_dir or osp.join(
        'work_dirs', 'demo_quick' if quick else 'demo')
    demo = Demo(work_dir, data_dir, cache_dir, settings, force=force,
                configs_dir=configs_dir, show_progress=show_progress)
    return demo.run()
