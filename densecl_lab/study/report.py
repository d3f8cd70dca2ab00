# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The study's report: per-seed numbers, mean ± std per arm and budget, the
paired DenseCL − MoCo v2 difference with its 95 % t-interval, and plots."""
import json
import math
import os
import os.path as osp
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from densecl_lab.demo.report import INIT_LABELS, moving_average, save_figure
from densecl_plugin.utils.config_search import crop_size
from .dense_probe import DENSE_SETS, LEVELS
from .stats import mean_std, paired_difference

#: the report's tables: (title, ((key, header), ...)); every metric is in
#: percent except ``emb_std``
METRIC_GROUPS = (
    ('Held-out correspondence, fine-tuning and linear probe', (
        ('corr_acc', 'corr. acc. (%)'),
        ('det_AP50', 'det. AP50 (%)'),
        ('det_mAP', 'det. AP50:95 (%)'),
        ('seg_mIoU', 'seg. mIoU (%)'),
        ('probe_acc', 'linear probe acc. (%)'),
    )),
    ('Frozen-feature dense probe (val)', tuple(
        (f'dense_{name}_{lv}_{what}', f'{name} {lv} {head} (%)')
        for name in DENSE_SETS for lv in LEVELS
        for what, head in (('mIoU', 'mIoU'), ('acc', 'pix. acc.')))),
    ('View retrieval on fresh views of the pool', (
        ('feat_top1', 'pooled C5 top-1 (%)'),
        ('view_top1', 'embedding top-1 (%)'),
        ('emb_std', 'emb. std x sqrt(D)'),
    )),
)
#: (key, header) of every metric, in report order
METRICS = tuple(m for _, group in METRIC_GROUPS for m in group)
#: decimals of a metric in the tables (default 1)
DECIMALS = {'emb_std': 3}
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
    out = dict(corr_acc=_pct(corr['accuracy']),
               det_AP50=_pct(det.get('pascal_voc/AP50')),
               det_mAP=_pct(det.get('pascal_voc/mAP')),
               seg_mIoU=_num(seg.get('mIoU')),
               probe_acc=_pct(arm_result['probe']['accuracy']),
               same_cell_acc=_pct(corr['same_cell_accuracy']),
               chance_acc=_pct(corr['chance']))
    dense = (arm_result.get('dense_probe') or {}).get('sets', {})
    for name in DENSE_SETS:
        for lv in LEVELS:
            res = dense.get(name, {}).get(lv, {})
            out[f'dense_{name}_{lv}_mIoU'] = _pct(res.get('mIoU'))
            out[f'dense_{name}_{lv}_acc'] = _pct(res.get('pixel_acc'))
    ret = arm_result.get('retrieval') or {}
    out.update(feat_top1=_pct(ret.get('feat_top1')),
               view_top1=_pct(ret.get('view_top1')),
               emb_std=_num(ret.get('emb_std')),
               retrieval_chance=_pct(ret.get('chance')))
    return out


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


def _pm(stats: Dict[str, Any], digits: int = 1) -> str:
    if stats['mean'] is None:
        return '-'
    if stats['std'] is None:
        return f'{stats["mean"]:.{digits}f}'
    return f'{stats["mean"]:.{digits}f} ± {stats["std"]:.{digits}f}'


def _interval(d: Dict[str, Any], digits: int = 1) -> str:
    if d['mean'] is None:
        return '-'
    if d['lo'] is None:
        return f'{d["mean"]:+.{digits}f} (n={d["n"]})'
    return (f'{d["mean"]:+.{digits}f} [{d["lo"]:+.{digits}f}, '
            f'{d["hi"]:+.{digits}f}]')


def format_markdown(summary: Sequence[Dict[str, Any]],
                    paired: Sequence[Dict[str, Any]],
                    notes: Sequence[str], title: str) -> str:
    """Mean ± std and paired differences, one table per group of
    :data:`METRIC_GROUPS` each, and the notes."""
    def digits(m: str) -> int:
        return DECIMALS.get(m, 1)

    lines = [f'# {title}', '', '## Mean ± std over seeds']
    for k, (group, metrics) in enumerate(METRIC_GROUPS):
        heads = [h for _, h in metrics]
        extra = ' same-cell corr. (%) |' if k == 0 else ''
        lines += ['', f'### {group}', '',
                  '| arm | budget (iters) | seeds | ' + ' | '.join(heads) +
                  ' |' + extra,
                  '|---|---:|---:|' + '---:|' * (len(heads) + (k == 0))]
        for row in summary:
            st = row['metrics']
            n = max(st[m]['n'] for m, _ in metrics)
            cells = [_pm(st[m], digits(m)) for m, _ in metrics]
            if k == 0:
                cells.append(_pm(st['same_cell_acc']))
            lines.append(
                f'| {INIT_LABELS[row["arm"]]} | '
                f'{row["budget"] if row["budget"] else "-"} | {n} | ' +
                ' | '.join(cells) + ' |')
    lines += ['', f'## DenseCL − MoCo v2, paired by seed (mean '
              f'[{int(100 * CONFIDENCE)} % t-interval])']
    for group, metrics in METRIC_GROUPS:
        heads = [h for _, h in metrics]
        lines += ['', f'### {group}', '',
                  '| budget (iters) | seeds | ' + ' | '.join(heads) + ' |',
                  '|---:|---:|' + '---:|' * len(heads)]
        for row in paired:
            n = max(row['metrics'][m]['n'] for m, _ in metrics)
            lines.append(f'| {row["budget"]} | {n} | ' + ' | '.join(
                _interval(row['metrics'][m], digits(m))
                for m, _ in metrics) + ' |')
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
    n_cols = 4
    n_rows = -(-len(METRICS) // n_cols)
    fig = _figure((4 * n_cols, 3.1 * n_rows + 0.5))
    for k, (metric, head) in enumerate(METRICS):
        ax = fig.add_subplot(n_rows, n_cols, k + 1)
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
    any_random = next(r for r in results['random'].values())
    any_probe = any_random['probe']
    recipe = pretrain_recipe_text({
        algo: study.demo(s.seeds[0], f'iters{max(budgets)}',
                         max(budgets)).pretrain_config(algo)
        for algo in ('mocov2', 'densecl')})
    threads = '' if getattr(study, 'jobs', 1) > 1 else \
        f' (torch threads: {_torch_threads()})'
    notes = [
        f'{s.name} study: seeds {list(s.seeds)} (pre-training and '
        f'fine-tuning `randomness.seed`; data splits {m.get("seed")}); '
        f'budgets {budgets} pre-training iterations, each a separate run '
        'with its own cosine schedule (not a checkpoint of a longer run); '
        'DenseCL\'s dense loss starts after '
        f'{100 * s.densecl_start_fraction:.0f} % of each budget.',
        f'Pre-training: the demo configs ({recipe}) on the '
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
        dense_probe_note(any_random.get('dense_probe')),
        retrieval_note(any_random.get('retrieval')),
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


def pretrain_recipe(cfg: Any) -> Dict[str, Any]:
    """What a pre-training config runs, for the report's notes.

    Args:
        cfg (Config): a pre-training config as the study runs it.

    Returns:
        dict: ``depth``, ``view_size``, ``queue_len``, ``momentum``,
        ``split_bn_groups``, ``batch_size``, ``optimizer``, ``lr``,
        ``weight_decay``, ``amp`` (the autocast dtype or None),
        ``schedule`` (the lr scheduler types).
    """
    model, optim = cfg.model, cfg.optim_wrapper
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    return dict(
        depth=model.backbone.get('depth'),
        view_size=crop_size(cfg.train_dataloader.dataset.pipeline),
        queue_len=model.get('queue_len'), momentum=model.get('momentum'),
        split_bn_groups=model.get('split_bn_groups', 1) or 1,
        batch_size=cfg.train_dataloader.batch_size,
        optimizer=optim.optimizer.type, lr=optim.optimizer.lr,
        weight_decay=optim.optimizer.get('weight_decay'),
        amp=optim.get('dtype') if 'Amp' in optim.get('type', '') else None,
        schedule=' then '.join(p.type for p in schedulers))


def pretrain_recipe_text(cfgs: Dict[str, Any]) -> str:
    """The recipe of :func:`pretrain_recipe` in words, one value per item
    when the configs agree, else one per algorithm (``cfgs``: algo ->
    config)."""
    recipes = {algo: pretrain_recipe(cfg) for algo, cfg in cfgs.items()}

    def item(key: str, fmt: str) -> str:
        values = {algo: r[key] for algo, r in recipes.items()}
        if len(set(map(str, values.values()))) == 1:
            return fmt.format(next(iter(values.values())))
        return ' / '.join(f'{fmt.format(v)} ({INIT_LABELS[a]})'
                          for a, v in values.items())

    first = next(iter(recipes.values()))
    parts = [item('depth', 'ResNet-{}'), item('view_size', '{} px views'),
             item('queue_len', 'queue {}'), item('momentum', 'm = {}')]
    if any(r['split_bn_groups'] > 1 for r in recipes.values()):
        parts.append(item('split_bn_groups', 'split BN in {} groups'))
    parts += [item('batch_size', 'batch {}'),
              item('optimizer', '{}') + ' ' + item('lr', 'lr {}') + ', ' +
              item('weight_decay', 'weight decay {}') + ', ' +
              item('schedule', '{}')]
    if first['amp']:
        parts.append(item('amp', '{} autocast'))
    return ', '.join(parts)


def dense_probe_note(result: Optional[Dict[str, Any]]) -> str:
    """The dense probe's line of the notes (from one of its results)."""
    if not result:
        return 'Dense probe: not run.'
    sets = result['sets']
    grids = ', '.join(
        f'{lv} {"x".join(map(str, next(iter(sets.values()))[lv]["grid"]))}'
        for lv in result['levels'])
    data = '; '.join(
        f'{name}: {DENSE_SETS[name]}, {r["num_train"]} train / '
        f'{r["num_val"]} val tiles, foreground '
        f'{100 * r["foreground"]["val"]:.0f} % of the val pixels'
        for name, r in sets.items())
    return (f'Dense probe: a 1x1 conv (per-pixel logistic regression, L2 '
            f'{result["weight_decay"]:g}, {result["max_iter"]} full-batch '
            f'L-BFGS iterations from zeros, features standardised on train) '
            f'on the frozen C4 and C5 maps (BN in eval mode) at '
            f'{result["size"]} px ({grids} grid), its logits bilinearly '
            f'upsampled to the {result["size"]} px label grid; val mIoU '
            f'over the 2 classes and pixel accuracy. {data}.')


def retrieval_note(result: Optional[Dict[str, Any]]) -> str:
    """The view retrieval's line of the notes (from one of its results)."""
    if not result:
        return 'View retrieval: not run.'
    return (f'View retrieval: two fresh pre-training views (seeds '
            f'{result["seed"]} + i) of {result["num_images"]} pool images '
            f'evenly spaced over the sorted files, BN in train mode; top-1 '
            f'= the share of first views whose nearest second view (cosine) '
            f'is their own partner (chance {100 * result["chance"]:.1f} %), '
            'of the pooled C5 features and of the neck\'s embeddings (the '
            'random init\'s neck is random too); emb. std = per-dimension '
            'std of the normalised embeddings x sqrt(D) (0 when collapsed).')


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
