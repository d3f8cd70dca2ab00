# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Run downstream benchmarks from one pre-trained checkpoint and tabulate.

What ``tools/benchmarks/run_transfer.py`` and the
``tools/benchmarks/{mmdetection,mmsegmentation}/*_train.sh`` scripts do:

1. check the checkpoint (exists, holds a backbone) before anything starts;
2. per benchmark, build the training command: our ``tools/train.py`` (one
   process), ``tools/dist_train.sh`` (torchrun) or ``tools/slurm_train.sh``,
   always with ``--cfg-options model.init_cfg.checkpoint=PRETRAIN``; run it,
   only print it, or (Slurm) submit it as a batch job and return
   (:func:`submit_slurm`; :func:`slurm_status` follows the jobs);
3. read the final metrics from each work dir (MMEngine's
   ``vis_data/scalars.json``) and write one markdown / CSV table next to the
   published DenseCL and MoCo v2 numbers (:mod:`.published`).

:func:`run_transfer_cli` is the whole of ``run_transfer.py`` but its
argument parsing (exit status included).
"""
import csv
import glob
import io
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .published import published_for

#: the repository root (tools/ and configs/ live there)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the option every benchmark config takes the checkpoint through
CHECKPOINT_KEY = 'model.init_cfg.checkpoint'


@dataclass(frozen=True)
class Benchmark:
    """One downstream benchmark.

    Attributes:
        name (str): short name (``'voc0712-c4-24k'``).
        config (str): config path relative to the repository root.
        gpus (int): GPUs of the protocol (the config's ``{gpus}x{batch}``).
        metrics (tuple): ``(column, scalars.json key, scale)``; the value
            shown is ``scale * value`` (mmdet reports 0-1, mmseg 0-100).
    """
    name: str
    config: str
    gpus: int
    metrics: Tuple[Tuple[str, str, float], ...]

    @property
    def family(self) -> str:
        """``'mmdetection'`` or ``'mmsegmentation'``."""
        return self.config.split('/')[2]


_DET = 'configs/benchmarks/mmdetection'
_SEG = 'configs/benchmarks/mmsegmentation'
_VOC = (('AP', 'pascal_voc/mAP', 100.), ('AP50', 'pascal_voc/AP50', 100.),
        ('AP75', 'pascal_voc/AP75', 100.))
_COCO = (('APbb', 'coco/bbox_mAP', 100.), ('APbb50', 'coco/bbox_mAP_50', 100.),
         ('APmk', 'coco/segm_mAP', 100.), ('APmk50', 'coco/segm_mAP_50', 100.))
_MIOU = (('mIoU', 'mIoU', 1.), )

#: every benchmark, by name
BENCHMARKS: Dict[str, Benchmark] = {b.name: b for b in (
    Benchmark('voc0712-c4-24k',
              f'{_DET}/voc0712/faster-rcnn_r50-c4_8xb2-24k_voc0712.py', 8,
              _VOC),
    Benchmark('coco-c4-1x', f'{_DET}/coco/mask-rcnn_r50-c4_8xb2-1x_coco.py',
              8, _COCO),
    Benchmark('coco-c4-2x', f'{_DET}/coco/mask-rcnn_r50-c4_8xb2-2x_coco.py',
              8, _COCO),
    Benchmark('coco-fpn-1x',
              f'{_DET}/coco/mask-rcnn_r50-fpn_8xb2-1x_coco.py', 8, _COCO),
    Benchmark('coco-fpn-2x',
              f'{_DET}/coco/mask-rcnn_r50-fpn_8xb2-2x_coco.py', 8, _COCO),
    Benchmark('voc12aug-20k',
              f'{_SEG}/voc12aug/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py', 4,
              _MIOU),
    Benchmark('voc12aug-40k',
              f'{_SEG}/voc12aug/fcn_r50-d8_4xb4-40k_voc12aug-512x512.py', 4,
              _MIOU),
    Benchmark('cityscapes-40k', f'{_SEG}/cityscapes/'
              'fcn_r50-d8_4xb2-40k_cityscapes-769x769.py', 4, _MIOU),
    Benchmark('cityscapes-80k', f'{_SEG}/cityscapes/'
              'fcn_r50-d8_4xb2-80k_cityscapes-769x769.py', 4, _MIOU),
    Benchmark('ade20k-80k',
              f'{_SEG}/ade20k/fcn_r50-d8_4xb4-80k_ade20k-512x512.py', 4,
              _MIOU),
    Benchmark('ade20k-160k',
              f'{_SEG}/ade20k/fcn_r50-d8_4xb4-160k_ade20k-512x512.py', 4,
              _MIOU),
)}


#: the demo's two small fine-tunings (``make demo``), found by their config
#: paths; not part of ``'all'``
DEMO_BENCHMARKS: Dict[str, Benchmark] = {b.name: b for b in (
    Benchmark('demo-deepforest-det', 'configs/demo/'
              'faster-rcnn_r18-fpn_1xb4-60iters_deepforest-voc.py', 1,
              (('AP50', 'pascal_voc/AP50', 100.), )),
    Benchmark('demo-nuclei-seg',
              'configs/demo/fcn_r18-d8_1xb8-120iters_stardist-nuclei.py', 1,
              _MIOU),
)}


def get_benchmarks(names: Sequence[str]) -> List[Benchmark]:
    """Look benchmarks up by name (``'all'`` for every one)."""
    if list(names) == ['all']:
        return list(BENCHMARKS.values())
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise KeyError(f'unknown benchmark(s) {unknown}; choose from '
                       f'{sorted(BENCHMARKS)} or "all"')
    return [BENCHMARKS[n] for n in names]


def benchmark_for_config(config: str) -> Benchmark:
    """The benchmark of a config path, or an ad-hoc one for another config
    (no metrics, 8 GPUs)."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} does not exist')
    rel = osp.relpath(osp.abspath(config), REPO_ROOT)
    for b in (*BENCHMARKS.values(), *DEMO_BENCHMARKS.values()):
        if b.config == rel:
            return b
    name = osp.splitext(osp.basename(config))[0]
    return Benchmark(name, osp.abspath(config), 8, ())


def checkpoint_stem(pretrain: str) -> str:
    """A work-dir-friendly name for a checkpoint path or URI."""
    base = osp.basename(pretrain.rstrip('/')) or 'pretrain'
    return base.split('.')[0] or 'pretrain'


def work_dir_for(benchmark: Benchmark, pretrain: str,
                 root: str = 'work_dirs/transfer') -> str:
    """``<root>/<checkpoint stem>/<benchmark name>``."""
    return osp.join(root, checkpoint_stem(pretrain), benchmark.name)


def train_command(benchmark: Benchmark, pretrain: str, work_dir: str,
                  gpus: Optional[int] = None, launcher: str = 'pytorch',
                  partition: Optional[str] = None,
                  extra_args: Sequence[str] = ()
                  ) -> Tuple[List[str], Dict[str, str]]:
    """The command (argv and extra environment) that trains one benchmark.

    Args:
        benchmark (Benchmark): what to train.
        pretrain (str): the pre-trained checkpoint.
        work_dir (str): the run's work dir.
        gpus (int, optional): number of GPUs (processes). Defaults to the
            protocol's ``benchmark.gpus``.
        launcher (str): ``'none'`` (one process, ``tools/train.py``),
            ``'pytorch'`` (``tools/dist_train.sh``, torchrun) or ``'slurm'``
            (``tools/slurm_train.sh``). Defaults to ``'pytorch'``.
        partition (str, optional): Slurm partition (``launcher='slurm'``).
        extra_args (Sequence[str]): more ``tools/train.py`` arguments.

    Returns:
        tuple: argv list and environment additions.
    """
    gpus = benchmark.gpus if gpus is None else gpus
    config = osp.join(REPO_ROOT, benchmark.config) \
        if not osp.isabs(benchmark.config) else benchmark.config
    train_args = ['--cfg-options', f'{CHECKPOINT_KEY}={pretrain}',
                  *extra_args]
    tools = osp.join(REPO_ROOT, 'tools')
    if launcher == 'none':
        return [sys.executable, osp.join(tools, 'train.py'), config,
                '--work-dir', work_dir, *train_args], {}
    if launcher == 'pytorch':
        return ['bash', osp.join(tools, 'dist_train.sh'), config, str(gpus),
                '--work-dir', work_dir, *train_args], {}
    if launcher == 'slurm':
        if not partition:
            raise ValueError('launcher="slurm" needs a partition')
        job = f'{benchmark.name}_{checkpoint_stem(pretrain)}'
        return ['bash', osp.join(tools, 'slurm_train.sh'), partition, job,
                config, work_dir, *train_args], {'GPUS': str(gpus)}
    raise ValueError(f"launcher must be 'none', 'pytorch' or 'slurm', got "
                     f'{launcher!r}')


def format_command(argv: Sequence[str], env: Dict[str, str]) -> str:
    """A copy-pasteable shell line."""
    return ' '.join([f'{k}={shlex.quote(v)}' for k, v in env.items()]
                    + [shlex.quote(a) for a in argv])


def read_scalars(work_dir: str) -> List[dict]:
    """All records of the newest ``vis_data/scalars.json`` in a work dir."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def collect_metrics(benchmark: Benchmark, work_dir: str
                    ) -> Dict[str, Optional[float]]:
    """The last evaluation's metrics of a run, in percent (None if absent)."""
    records = read_scalars(work_dir)
    out = {}
    for column, key, scale in benchmark.metrics:
        values = [r[key] for r in records if key in r]
        out[column] = round(values[-1] * scale, 2) if values else None
    return out


def _published_cell(name: str, method: str, column: str) -> str:
    items = published_for(name, method, column)
    return '; '.join(f'{p.value:g}{"" if p.verified else "?"} '
                     f'({p.protocol})' for p in items)


def results_rows(results: Dict[str, Dict[str, Optional[float]]]
                 ) -> List[Dict[str, str]]:
    """One row per (benchmark, metric): ours and the published numbers."""
    rows = []
    for name, metrics in results.items():
        for column, value in metrics.items():
            rows.append({
                'benchmark': name, 'metric': column,
                'ours': '' if value is None else f'{value:.2f}',
                'DenseCL (published)': _published_cell(name, 'DenseCL',
                                                       column),
                'MoCo v2 (published)': _published_cell(name, 'MoCo v2',
                                                       column)})
    return rows


def to_markdown(rows: List[Dict[str, str]]) -> str:
    """A markdown table, with the footnote on unverified numbers."""
    if not rows:
        return '(no results)\n'
    head = list(rows[0])
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join('---' for _ in head) + '|']
    lines += ['| ' + ' | '.join(r[h] or '-' for h in head) + ' |'
              for r in rows]
    return '\n'.join(lines) + (
        '\n\n`?`: recalled from the DenseCL paper, not confirmed by a stored '
        'source. Sources: see `densecl_plugin/downstream/published.py`.\n')


def to_csv(rows: List[Dict[str, str]]) -> str:
    """The same rows as CSV."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


#: where the Slurm job ids of one checkpoint's benchmarks are kept
JOBS_FILE = 'slurm_jobs.json'
#: job states after which a benchmark is submitted again (and resumes)
RESUBMIT_STATES = ('FAILED', 'CANCELLED', 'TIMEOUT', 'PREEMPTED',
                   'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE')


def slurm_job_state(job_id: str, run: Callable = subprocess.run) -> str:
    """A Slurm job's state (``PENDING``, ``RUNNING``, ``COMPLETED``, ...).

    Asks ``squeue``, then ``scontrol show job`` (jobs that ended recently),
    then ``sacct`` (where accounting is set up); ``UNKNOWN`` where none
    knows the job (any more).
    """
    asks = (['squeue', '-h', '-j', job_id, '-o', '%T'],
            ['scontrol', 'show', 'job', '-o', job_id],
            ['sacct', '-n', '-X', '-P', '-j', job_id, '-o', 'State'])
    for argv in asks:
        try:
            proc = run(argv, capture_output=True, text=True)
        except OSError:
            continue
        out = proc.stdout.strip() if proc.returncode == 0 else ''
        if argv[0] == 'scontrol':
            found = [w.split('=', 1)[1] for w in out.split()
                     if w.startswith('JobState=')]
            out = found[0] if found else ''
        if out:
            return out.split()[0].split('\n')[0].rstrip('+')
    return 'UNKNOWN'


def jobs_file(pretrain: str, work_root: str = 'work_dirs/transfer') -> str:
    """``<work_root>/<ckpt stem>/slurm_jobs.json``."""
    return osp.join(work_root, checkpoint_stem(pretrain), JOBS_FILE)


def load_jobs(path: str) -> Dict[str, dict]:
    """The recorded jobs (``{}`` where none were submitted)."""
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def submit_slurm(pretrain: str, benchmarks: Sequence[Benchmark],
                 work_root: str = 'work_dirs/transfer',
                 gpus: Optional[int] = None,
                 partition: Optional[str] = None,
                 extra_args: Sequence[str] = (),
                 run: Callable = subprocess.run,
                 echo: Callable[[str], None] = print) -> Dict[str, dict]:
    """Submit each benchmark as its own batch job and return at once.

    Each job is ``BATCH=1 tools/slurm_train.sh`` (``sbatch --requeue``,
    asking for the GPUs it uses: ``GPUS`` processes,
    ``--gres=gpu:<GPUS_PER_NODE>``; ``GPUS_PER_NODE=0`` in the environment
    for a CPU partition) with ``--resume``, so a job that Slurm requeues
    (preemption) or that is submitted again resumes from its newest intact
    checkpoint. The job ids go to :func:`jobs_file` (with every earlier
    submission) and to ``<work_dir>/slurm_job_id``.

    A benchmark whose recorded job is pending, running or completed is
    left alone; one whose job failed, was cancelled, preempted or timed
    out (:data:`RESUBMIT_STATES`), or that Slurm no longer knows and that
    has no results, is submitted again. So the same command, run again,
    resubmits what needs it.

    Returns:
        dict: ``benchmark name -> {'work_dir', 'job_id', 'submissions',
        'returncode'}``.
    """
    path = jobs_file(pretrain, work_root)
    jobs = load_jobs(path)
    for bench in benchmarks:
        wd = work_dir_for(bench, pretrain, work_root)
        rec = jobs.get(bench.name)
        if rec is not None:
            state = slurm_job_state(rec['job_id'], run)
            done = state == 'UNKNOWN' and any(
                v is not None for v in collect_metrics(bench, wd).values())
            if state not in RESUBMIT_STATES and (state != 'UNKNOWN' or done):
                echo(f'[{bench.name}] job {rec["job_id"]} is {state}: left '
                     f'alone')
                continue
            echo(f'[{bench.name}] job {rec["job_id"]} is {state}: '
                 f'submitting again (it resumes)')
        argv, env = train_command(bench, pretrain, wd, gpus, 'slurm',
                                  partition, [*extra_args, '--resume'])
        env['BATCH'] = '1'
        echo(f'[{bench.name}] {format_command(argv, env)}')
        proc = run(argv, env={**os.environ, **env}, capture_output=True,
                   text=True)
        if proc.returncode != 0:
            echo(f'[{bench.name}] sbatch failed ({proc.returncode}): '
                 f'{proc.stderr.strip()}')
            jobs.setdefault(bench.name, {}).update(
                work_dir=wd, returncode=proc.returncode)
            continue
        with open(osp.join(wd, 'slurm_job_id')) as f:
            job = f.read().strip()
        echo(f'[{bench.name}] submitted job {job}')
        earlier = (rec or {}).get('submissions', [])
        jobs[bench.name] = dict(work_dir=wd, job_id=job,
                                submissions=[*earlier, job], returncode=0)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(jobs, f, indent=1)
    return jobs


def slurm_status(pretrain: str, work_root: str = 'work_dirs/transfer',
                 run: Callable = subprocess.run) -> List[Dict[str, str]]:
    """One row per submitted benchmark: job, state, submissions, newest
    checkpoint and whether results are there.

    Raises:
        FileNotFoundError: nothing was submitted for ``pretrain``.
    """
    from densecl_plugin.utils.checkpoint_integrity import checkpoints_in
    path = jobs_file(pretrain, work_root)
    jobs = load_jobs(path)
    if not jobs:
        raise FileNotFoundError(f'no Slurm jobs recorded in {path}; submit '
                                f'with --launcher slurm first')
    rows = []
    for name, rec in jobs.items():
        wd = rec['work_dir']
        bench = BENCHMARKS.get(name) or DEMO_BENCHMARKS.get(name)
        metrics = collect_metrics(bench, wd) if bench else {}
        ckpts = checkpoints_in(wd)
        rows.append({
            'benchmark': name, 'job': rec.get('job_id', ''),
            'state': (slurm_job_state(rec['job_id'], run)
                      if rec.get('job_id') else 'NOT SUBMITTED'),
            'submissions': str(len(rec.get('submissions', []))),
            'checkpoint': osp.basename(ckpts[0]) if ckpts else '',
            'results': 'yes' if any(v is not None for v in metrics.values())
            else 'no'})
    return rows


def run_transfer(pretrain: str,
                 benchmarks: Sequence[Benchmark],
                 work_root: str = 'work_dirs/transfer',
                 gpus: Optional[int] = None,
                 launcher: str = 'pytorch',
                 partition: Optional[str] = None,
                 extra_args: Sequence[str] = (),
                 print_only: bool = False,
                 collect_only: bool = False,
                 run: Callable = subprocess.run,
                 echo: Callable[[str], None] = print) -> Dict[str, dict]:
    """Check the checkpoint, run (or print) each benchmark, collect metrics.

    Args:
        pretrain (str): the pre-trained checkpoint.
        benchmarks (Sequence[Benchmark]): what to run, in order.
        work_root (str): runs go to ``<work_root>/<ckpt stem>/<name>``.
            Defaults to ``'work_dirs/transfer'``.
        gpus (int, optional): GPUs per run. Defaults to each protocol's.
        launcher (str): see :func:`train_command`; ``'slurm'`` submits
            (:func:`submit_slurm`) and returns without a table. Defaults to
            ``'pytorch'``.
        partition (str, optional): Slurm partition.
        extra_args (Sequence[str]): more ``tools/train.py`` arguments.
        print_only (bool): print the commands, run nothing. Defaults to
            False.
        collect_only (bool): skip training, only read the work dirs.
            Defaults to False.
        run (Callable): runs one command (``subprocess.run`` signature).
        echo (Callable): where messages go. Defaults to ``print``.

    Returns:
        dict: ``benchmark name -> {'work_dir', 'returncode', 'metrics'}``.
        The table goes to ``<work_root>/<ckpt stem>/results.{md,csv}``
        unless ``print_only``.
    """
    if not (print_only or collect_only) and '://' not in pretrain:
        from .densecl_pretrained import check_pretrained
        info = check_pretrained(pretrain)  # raises before anything runs
        echo(f'{pretrain}: {info["num_tensors"]} backbone tensors '
             f'({info["layout"]}, prefix {info["prefix"]!r})')
    if launcher == 'slurm' and not (print_only or collect_only):
        jobs = submit_slurm(pretrain, benchmarks, work_root, gpus, partition,
                            extra_args, run, echo)
        echo(f'job ids in {jobs_file(pretrain, work_root)}; follow them '
             f'with --status, write the table with --collect-only')
        return {b.name: dict(work_dir=jobs[b.name]['work_dir'],
                             returncode=jobs[b.name].get('returncode'),
                             job_id=jobs[b.name].get('job_id'), metrics={})
                for b in benchmarks}
    out = {}
    for bench in benchmarks:
        wd = work_dir_for(bench, pretrain, work_root)
        argv, env = train_command(bench, pretrain, wd, gpus, launcher,
                                  partition, extra_args)
        returncode = None
        if print_only:
            echo(format_command(argv, env))
        elif not collect_only:
            echo(f'[{bench.name}] {format_command(argv, env)}')
            returncode = run(argv, env={**os.environ, **env}).returncode
            if returncode != 0:
                echo(f'[{bench.name}] failed with exit code {returncode}')
        out[bench.name] = dict(work_dir=wd, returncode=returncode,
                               metrics=collect_metrics(bench, wd))
    if not print_only and benchmarks:
        rows = results_rows({n: r['metrics'] for n, r in out.items()})
        table_dir = osp.join(work_root, checkpoint_stem(pretrain))
        os.makedirs(table_dir, exist_ok=True)
        with open(osp.join(table_dir, 'results.md'), 'w') as f:
            f.write(to_markdown(rows))
        with open(osp.join(table_dir, 'results.csv'), 'w') as f:
            f.write(to_csv(rows))
        echo(to_markdown(rows))
    return out


def benchmark_list() -> List[str]:
    """One line per benchmark of :data:`BENCHMARKS`: name, GPUs, config."""
    return [f'{b.name:16s} {b.gpus} GPUs  {b.config}'
            for b in BENCHMARKS.values()]


def run_transfer_cli(pretrain: Optional[str] = None,
                     names: Sequence[str] = (),
                     configs: Sequence[str] = (),
                     list_only: bool = False,
                     status: bool = False,
                     echo: Callable[[str], None] = print,
                     **run_kwargs: Any) -> int:
    """What ``tools/benchmarks/run_transfer.py`` does; its exit status.

    ``run_kwargs`` (``work_root``, ``gpus``, ``launcher``, ``partition``,
    ``extra_args``, ``print_only``, ``collect_only``, ``run``) are passed to
    :func:`run_transfer`, with its defaults.

    Args:
        pretrain (str, optional): The pre-trained checkpoint (needed unless
            ``list_only``). Defaults to None.
        names (Sequence[str]): Benchmark names (:data:`BENCHMARKS`) or
            ``'all'``. Defaults to ().
        configs (Sequence[str]): Benchmark config files
            (:func:`benchmark_for_config`), run after ``names``.
            Defaults to ().
        list_only (bool): Print :func:`benchmark_list`, nothing else.
            Defaults to False.
        status (bool): Print the state of each Slurm job submitted for
            ``pretrain`` (:func:`slurm_status`), nothing else. Defaults to
            False.
        echo (Callable): Where messages go. Defaults to ``print``.
        **run_kwargs: the keyword arguments of :func:`run_transfer` after
            ``benchmarks``.

    Returns:
        int: 0 when every run succeeded (or nothing ran), 1 when one failed,
        2 on an unknown benchmark, a bad config or checkpoint (the reason on
        stderr as ``error: ...``, before anything runs).
    """
    if list_only:
        for line in benchmark_list():
            echo(line)
        return 0
    if status:
        try:
            rows = slurm_status(pretrain, run_kwargs.get(
                'work_root', 'work_dirs/transfer'))
        except FileNotFoundError as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        echo(to_markdown(rows).split('\n\n')[0])
        return 0
    try:
        benchmarks = get_benchmarks(names) if names else []
        benchmarks += [benchmark_for_config(c) for c in configs]
        results = run_transfer(pretrain, benchmarks, echo=echo, **run_kwargs)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 1 if any(r['returncode'] for r in results.values()) else 0
