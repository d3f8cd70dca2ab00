# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The study's report: per-seed numbers, mean ± std per arm and budget, the
paired DenseCL − MoCo v2 difference with its 95 % t-interval, and plots."""
import json
import math
import os
import os.path as osp
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from densecl_plugin.demo.report import INIT_LABELS, moving_average, save_figure
from .stats import mean_std, paired_difference

#: (key, header) of every metric, in percent
METRICS = (
    ('corr_acc', 'corr. acc. (%)'),
    ('det_AP50', 'det. AP50 (%)'),
    ('det_mAP', 'det. AP50:95 (%)'),
    ('seg_mIoU', 'seg. mIoU (%)'),
    ('probe_acc', 'linear probe acc. (%)'),
)
#: the confidence of the paired intervals
CONFIDENCE = 0.95


def _num(value: Any) -> Optional[float]:
    """A finite float, or None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _pct(value: Any) -> Optional[float]:
    value = _num(value)
    return None if value is None else 100.0 * value


def run_metrics(arm_result: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """The metrics (percent) of one arm, budget and seed."""
    det = arm_result['finetune']['detection']['metrics']
    seg = arm_result['finetune']['segmentation']['metrics']
    corr = arm_result['correspondence']
    return dict(corr_acc=_pct(corr['accuracy']),
                det_AP50=_pct(det.get('pascal_voc/AP50')),
                det_mAP=_pct(det.get('pascal_voc/mAP')),
                seg_mIoU=_num(seg.get('mIoU')),
                probe_acc=_pct(arm_result['probe']['accuracy']),
                same_cell_acc=_pct(corr['same_cell_accuracy']),
                chance_acc=_pct(corr['chance']))


def collect_runs(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One record per (arm, budget, seed); the random init has budget 0."""
    runs = []
    for seed, res in sorted(results['random'].items()):
        runs.append(dict(arm='random', budget=0, seed=seed,
                         metrics=run_metrics(res)))
    for arm in ('mocov2', 'densecl'):
        for budget, per_seed in sorted(results[arm].items()):
            for seed, res in sorted(per_seed.items()):
                pre = res['pretrain']
                runs.append(dict(arm=arm, budget=budget, seed=seed,
                                 metrics=run_metrics(res),
                                 pretrain_time_s=pre['train_time'],
                                 checkpoint=pre['checkpoint']))
    return runs


def per_seed(runs: Sequence[Dict[str, Any]], arm: str, budget: int,
             metric: str) -> Dict[int, float]:
    """``seed -> value`` of one arm, budget and metric (None left out)."""
    return {r['seed']: r['metrics'][metric] for r in runs
            if r['arm'] == arm and r['budget'] == budget
            and r['metrics'].get(metric) is not None}


def summarize(runs: Sequence[Dict[str, Any]], budgets: Sequence[int]
              ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Mean ± std per arm and budget, and the paired differences.

    Returns:
        tuple[list, list]: ``summary`` rows ``{arm, budget, metrics: {m:
        {n, mean, std}}}`` and ``paired`` rows ``{budget, metrics: {m:
        paired_difference(DenseCL, MoCo v2)}}``.
    """
    keys = [m for m, _ in METRICS] + ['same_cell_acc', 'pretrain_time_s']
    summary = []
    for arm, bud in [('random', 0)] + [(a, b) for a in ('mocov2', 'densecl')
                                       for b in budgets]:
        rows = [r for r in runs if r['arm'] == arm and r['budget'] == bud]
        stats = {}
        for key in keys:
            values = [r['metrics'].get(key) if key != 'pretrain_time_s'
                      else r.get(key) for r in rows]
            stats[key] = mean_std([v for v in values if v is not None])
        summary.append(dict(arm=arm, budget=bud, metrics=stats))
    paired = [dict(budget=b, metrics={
        m: paired_difference(per_seed(runs, 'densecl', b, m),
                             per_seed(runs, 'mocov2', b, m), CONFIDENCE)
        for m, _ in METRICS}) for b in budgets]
    return summary, paired


def _pm(stats: Dict[str, Any]) -> str:
    if stats['mean'] is None:
        return '-'
    if stats['std'] is None:
        return f'{stats["mean"]:.1f}'
    return f'{stats["mean"]:.1f} ± {stats["std"]:.1f}'


def _interval(d: Dict[str, Any]) -> str:
    if d['mean'] is None:
        return '-'
    if d['lo'] is None:
        return f'{d["mean"]:+.1f} (n={d["n"]})'
    return f'{d["mean"]:+.1f} [{d["lo"]:+.1f}, {d["hi"]:+.1f}]'


def format_markdown(summary: Sequence[Dict[str, Any]],
                    paired: Sequence[Dict[str, Any]],
                    notes: Sequence[str], title: str) -> str:
    """The two tables (mean ± std; paired differences) and the notes."""
    heads = [h for _, h in METRICS]
    lines = [f'# {title}', '',
             '## Mean ± std over seeds', '',
             '| arm | budget (iters) | seeds | ' + ' | '.join(heads) +
             ' | same-cell corr. (%) |',
             '|---|---:|---:|' + '---:|' * (len(heads) + 1)]
    for row in summary:
        st = row['metrics']
        n = max(st[m]['n'] for m, _ in METRICS)
        lines.append(
            f'| {INIT_LABELS[row["arm"]]} | '
            f'{row["budget"] if row["budget"] else "-"} | {n} | ' +
            ' | '.join(_pm(st[m]) for m, _ in METRICS) +
            f' | {_pm(st["same_cell_acc"])} |')
    lines += ['', f'## DenseCL − MoCo v2, paired by seed (mean '
              f'[{int(100 * CONFIDENCE)} % t-interval])', '',
              '| budget (iters) | seeds | ' + ' | '.join(heads) + ' |',
              '|---:|---:|' + '---:|' * len(heads)]
    for row in paired:
        n = max(row['metrics'][m]['n'] for m, _ in METRICS)
        lines.append(f'| {row["budget"]} | {n} | ' + ' | '.join(
            _interval(row['metrics'][m]) for m, _ in METRICS) + ' |')
    if notes:
        lines += [''] + [f'- {n}' for n in notes]
    return '\n'.join(lines) + '\n'


def correspondence_curves(results: Dict[str, Any], budget: int
                          ) -> Dict[str, Any]:
    """Held-out accuracy (percent) over iterations of the ``budget`` runs,
    mean and std over seeds per evaluated iteration, per algorithm; plus
    DenseCL's training-batch ``corr_acc`` (CorrespondenceHook) per seed."""
    out: Dict[str, Any] = dict(budget=budget)
    for algo in ('mocov2', 'densecl'):
        by_iter: Dict[int, List[float]] = {}
        same: Dict[int, List[float]] = {}
        train: Dict[int, List[float]] = {}
        for seed, res in sorted(results[algo].get(budget, {}).items()):
            curve = res.get('curve') or {}
            for p in curve.get('held_out', []):
                by_iter.setdefault(p['iter'], []).append(100 * p['accuracy'])
                same.setdefault(p['iter'], []).append(
                    100 * p['same_cell_accuracy'])
            for p in curve.get('train_corr', []):
                train.setdefault(p['iter'], []).append(100 * p['accuracy'])
        out[algo] = dict(
            iters=sorted(by_iter),
            held_out=[mean_std(by_iter[i]) for i in sorted(by_iter)],
            same_cell=[mean_std(same[i])['mean'] for i in sorted(same)],
            train_iters=sorted(train),
            train_corr=[mean_std(train[i])['mean'] for i in sorted(train)])
    return out


def _figure(size: Tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(fig)
    return fig


COLOURS = dict(random='tab:grey', mocov2='tab:blue', densecl='tab:orange')


def plot_metrics_vs_budget(summary: Sequence[Dict[str, Any]],
                           budgets: Sequence[int], path: str) -> str:
    """One panel per metric: mean ± std (error bars) against the budget,
    the random init as a band."""
    fig = _figure((12, 6.5))
    for k, (metric, head) in enumerate(METRICS):
        ax = fig.add_subplot(2, 3, k + 1)
        for row in summary:
            if row['arm'] != 'random':
                continue
            st = row['metrics'][metric]
            if st['mean'] is not None:
                ax.axhline(st['mean'], color=COLOURS['random'],
                           linestyle='--', label='random init')
                if st['std']:
                    ax.axhspan(st['mean'] - st['std'], st['mean'] + st['std'],
                               color=COLOURS['random'], alpha=0.15)
        for arm, shift in (('mocov2', 0.97), ('densecl', 1.03)):
            pts = [(b * shift, r['metrics'][metric]) for b in budgets
                   for r in summary if r['arm'] == arm and r['budget'] == b
                   and r['metrics'][metric]['mean'] is not None]
            if pts:
                ax.errorbar([x for x, _ in pts], [s['mean'] for _, s in pts],
                            yerr=[s['std'] or 0.0 for _, s in pts],
                            color=COLOURS[arm], marker='o', capsize=3,
                            label=INIT_LABELS[arm])
        if metric == 'corr_acc':
            rows = [r for r in summary if r['metrics']['same_cell_acc'][
                'mean'] is not None]
            if rows:
                ax.axhline(rows[0]['metrics']['same_cell_acc']['mean'],
                           color='black', linestyle=':', linewidth=1,
                           label='same-cell baseline')
        ax.set_xscale('log')
        ax.set_xticks(list(budgets))
        ax.set_xticklabels([str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel('pre-training iterations')
        ax.set_title(head, fontsize=10)
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle('Metrics against the pre-training budget (mean ± std over '
                 'seeds)')
    return save_figure(fig, path)


def plot_correspondence_curve(curves: Dict[str, Any], chance: Optional[float],
                              path: str) -> str:
    """Held-out correspondence accuracy over pre-training iterations."""
    fig = _figure((7.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for algo in ('mocov2', 'densecl'):
        c = curves[algo]
        if not c['iters']:
            continue
        mean = [s['mean'] for s in c['held_out']]
        std = [s['std'] or 0.0 for s in c['held_out']]
        ax.plot(c['iters'], mean, color=COLOURS[algo], marker='o',
                markersize=3, label=f'{INIT_LABELS[algo]} (held-out views)')
        ax.fill_between(c['iters'], [m - s for m, s in zip(mean, std)],
                        [m + s for m, s in zip(mean, std)],
                        color=COLOURS[algo], alpha=0.15)
        if c['train_iters']:
            ax.plot(c['train_iters'], moving_average(c['train_corr'], 5),
                    color=COLOURS[algo], linestyle='--', linewidth=1,
                    label=f'{INIT_LABELS[algo]} (training batch, '
                    'CorrespondenceHook, 80 px)')
    same = curves['densecl']['same_cell'] or curves['mocov2']['same_cell']
    if same:
        ax.axhline(sum(same) / len(same), color='black', linestyle=':',
                   linewidth=1, label='same-cell baseline (held-out)')
    if chance is not None:
        ax.axhline(chance, color='grey', linestyle='--', linewidth=1,
                   label='chance (held-out grid)')
    ax.set_xlabel('pre-training iteration')
    ax.set_ylabel('correspondence accuracy (%)')
    ax.set_title(f'Correspondence accuracy during pre-training '
                 f'({curves["budget"]}-iteration runs, mean ± std over seeds)',
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_study_report(study, results: Dict[str, Any],
                       wall_time: float) -> Dict[str, Any]:
    """Write ``results.{md,json}`` and the PNGs into ``study.work_dir``."""
    s = study.settings
    budgets = sorted(s.budgets)
    runs = collect_runs(results)
    summary, paired = summarize(runs, budgets)
    curves = correspondence_curves(results, max(budgets))
    chances = [r['metrics']['chance_acc'] for r in runs
               if r['metrics']['chance_acc'] is not None]
    chance = chances[0] if chances else None
    files = dict(
        metrics_vs_budget=plot_metrics_vs_budget(
            summary, budgets, osp.join(study.work_dir,
                                       'metrics_vs_budget.png')),
        correspondence_curve=plot_correspondence_curve(
            curves, chance, osp.join(study.work_dir,
                                     'correspondence_curve.png')),
        log=study.log_file)
    m = study.manifest
    reused = sum(st['skipped'] for st in study.stage_status)
    any_corr = next(r for r in results['random'].values())['correspondence']
    any_probe = next(r for r in results['random'].values())['probe']
    threads = '' if getattr(study, 'jobs', 1) > 1 else \
        f' (torch threads: {_torch_threads()})'
    notes = [
        f'{s.name} study: seeds {list(s.seeds)} (pre-training and '
        f'fine-tuning `randomness.seed`; data splits {m.get("seed")}); '
        f'budgets {budgets} pre-training iterations, each a separate run '
        'with its own cosine schedule (not a checkpoint of a longer run); '
        'DenseCL\'s dense loss starts after '
        f'{100 * s.densecl_start_fraction:.0f} % of each budget.',
        f'Pre-training: the demo configs (ResNet-18, 80 px views, queue 256, '
        f'm = 0.99, batch {s.pretrain_batch_size or 16}) on the '
        f'{m["unlabeled"]["images"]}-image unlabeled pool.',
        f'Correspondence: argmax matches within one cell of the geometric '
        f'truth, {any_corr["num_pairs"]} held-out view pairs at '
        f'{any_corr["view_size"]} px ({"x".join(map(str, any_corr["grid"]))}'
        f' grid); chance {chance:.1f} %; the same-cell column matches every '
        'cell to the same cell (a feature-free baseline). Random init = the '
        'exact initial weights of that seed\'s DenseCL run.',
        f'Detection: Faster R-CNN R18-FPN, {s.detection_iters or 60} '
        f'iterations on the deepforest tiles (VOC AP); segmentation: FCN '
        f'R18-D8, {s.segmentation_iters or 120} iterations on the nuclei '
        '(mIoU); the random-init rows fine-tune from `init_cfg=None`.',
        f'Linear probe: {any_probe["data"]}, frozen average-pooled C5 at '
        f'{s.probe_size} px, L2 logistic regression, {s.probe_folds}-fold '
        f'stratified cross-validation ({any_probe["num_images"]} images).',
        'Intervals: mean of the per-seed differences ± t_(0.975, n-1) · '
        'sd / sqrt(n); with 3 seeds t = 4.30, so only large, consistent '
        'differences exclude 0.',
        f'Wall time: this invocation {wall_time:.0f} s'
        f'{_jobs_text(study)}, '
        f'{len(study.stage_status)} stages ({reused} reused), on '
        f'{os.cpu_count()} CPU cores{threads}.',
    ]
    title = 'Small-scale study: DenseCL vs MoCo v2 vs random init'
    md = format_markdown(summary, paired, notes, title)
    md += ('\n![metrics against budget](metrics_vs_budget.png)\n'
           '![correspondence during pre-training]'
           '(correspondence_curve.png)\n')
    payload = dict(
        settings=asdict(s), budgets=budgets, seeds=list(s.seeds),
        metrics=[m_ for m_, _ in METRICS], confidence=CONFIDENCE,
        runs=runs, summary=summary, paired=paired, curves=curves,
        baselines=dict(chance_acc=chance),
        data={k: v for k, v in m.items() if k not in ('held_out', 'reused')},
        stages=study.stage_status, wall_time=wall_time,
        costs=study.costs, files=files, notes=notes)
    md_path = osp.join(study.work_dir, 'results.md')
    json_path = osp.join(study.work_dir, 'results.json')
    with open(md_path, 'w') as f:
        f.write(md)
    with open(json_path, 'w') as f:
        json.dump(_clean(payload), f, indent=1, allow_nan=False)
    study.say('')
    study.say(md)
    study.say(f'Outputs: {md_path}, {json_path}, '
              f'{files["metrics_vs_budget"]}, '
              f'{files["correspondence_curve"]}')
    return dict(paths=dict(markdown=md_path, json=json_path, **files),
                summary=summary, paired=paired, runs=runs)


def _jobs_text(study: Any) -> str:
    """`` with N parallel jobs (stages: X s of compute)`` or ``''``."""
    jobs = study.jobs
    if jobs <= 1:
        return ''
    compute = sum(st['wall_time'] for st in study.stage_status)
    threads = study.shard_threads
    each = f' of {threads} torch thread(s) each' if threads else ''
    return (f' with {jobs} parallel jobs{each} (the stages\' own wall '
            f'times add up to {compute:.0f} s)')


def _torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def _clean(value: Any) -> Any:
    """JSON-able: int keys to str, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
