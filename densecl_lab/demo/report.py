# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The demo's results table (markdown + JSON) and its loss-curve plot."""
import json
import math
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: the initialisations compared, in table order
INITS = ('random', 'mocov2', 'densecl')
#: how the table names them
INIT_LABELS = {'random': 'random init', 'mocov2': 'MoCo v2',
               'densecl': 'DenseCL'}
#: table columns: (key in a row, header, number format)
COLUMNS = (
    ('pretrain_time_s', 'pre-training time (s)', '{:.0f}'),
    ('det_AP50', 'det. AP50 (%)', '{:.1f}'),
    ('det_mAP', 'det. AP50:95 (%)', '{:.1f}'),
    ('seg_mIoU', 'seg. mIoU (%)', '{:.1f}'),
    ('corr_acc', 'corr. acc. (%)', '{:.1f}'),
)


def _fmt(value: Any, fmt: str) -> str:
    if value is None:
        return '-'
    if isinstance(value, float) and not math.isfinite(value):
        return 'nan'
    return fmt.format(value)


def table_rows(pretrain: Dict[str, Dict[str, Any]],
               detection: Dict[str, Dict[str, Any]],
               segmentation: Dict[str, Dict[str, Any]],
               correspondence: Dict[str, Dict[str, Any]]
               ) -> List[Dict[str, Any]]:
    """One row per initialisation, metrics in percent.

    Args:
        pretrain (dict): ``algo -> {'train_time': s, ...}`` for ``mocov2``
            and ``densecl``.
        detection (dict): ``init -> VOCMetric metrics`` (``pascal_voc/AP50``
            and ``pascal_voc/mAP`` in [0, 1]).
        segmentation (dict): ``init -> IoUMetric metrics`` (``mIoU`` in
            percent, as mmseg reports it).
        correspondence (dict): ``init -> {'accuracy': [0, 1], ...}``.

    Returns:
        list[dict]: rows with ``init``, ``label`` and the :data:`COLUMNS`.
    """
    rows = []
    for init in INITS:
        det = detection.get(init, {})
        seg = segmentation.get(init, {})

        def pct(value: Optional[float]) -> Optional[float]:
            return None if value is None else 100.0 * float(value)
        rows.append(dict(
            init=init, label=INIT_LABELS[init],
            pretrain_time_s=pretrain.get(init, {}).get('train_time'),
            det_AP50=pct(det.get('pascal_voc/AP50')),
            det_mAP=pct(det.get('pascal_voc/mAP')),
            seg_mIoU=None if seg.get('mIoU') is None else float(seg['mIoU']),
            corr_acc=pct(correspondence.get(init, {}).get('accuracy'))))
    return rows


def format_markdown(rows: Sequence[Dict[str, Any]],
                    notes: Sequence[str] = ()) -> str:
    """The rows as a markdown table, with notes as a list below it."""
    header = '| backbone init | ' + ' | '.join(h for _, h, _ in COLUMNS) + \
        ' |'
    rule = '|---|' + '---:|' * len(COLUMNS)
    lines = [header, rule]
    for row in rows:
        cells = [_fmt(row.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append(f'| {row["label"]} | ' + ' | '.join(cells) + ' |')
    if notes:
        lines.append('')
        lines += [f'- {n}' for n in notes]
    return '\n'.join(lines) + '\n'


def write_report(out_dir: str, rows: Sequence[Dict[str, Any]],
                 notes: Sequence[str], extra: Dict[str, Any],
                 stem: str = 'results') -> Dict[str, str]:
    """Write ``<stem>.md`` (table and notes) and ``<stem>.json`` (rows,
    notes and ``extra``: settings, seeds, data, times, files).

    Returns:
        dict: ``{'markdown': path, 'json': path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    md_path = osp.join(out_dir, f'{stem}.md')
    json_path = osp.join(out_dir, f'{stem}.json')
    with open(md_path, 'w') as f:
        f.write('# DenseCL demo results\n\n' + format_markdown(rows, notes))
    with open(json_path, 'w') as f:
        json.dump(dict(rows=list(rows), notes=list(notes), **extra), f,
                  indent=1, allow_nan=False, default=_json_default)
    return dict(markdown=md_path, json=json_path)


def _json_default(value: Any) -> Any:
    raise TypeError(f'{type(value).__name__} {value!r} is not JSON-able')


def moving_average(values: Sequence[float], window: int) -> List[float]:
    """Trailing mean over up to ``window`` values (as long as ``values``)."""
    if window < 1:
        raise ValueError(f'window must be >= 1, got {window}')
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def infonce_curves(label: str, records: Sequence[Dict[str, float]]
                   ) -> Dict[str, List[Tuple[int, float]]]:
    """The unweighted InfoNCE terms of one pre-training, per iteration.

    MoCo v2 logs its InfoNCE as ``loss``. DenseCL logs the weighted terms
    ``loss_single = (1 - lambda) CE_single`` and ``loss_dense = lambda
    CE_dense`` (``lambda`` recorded per iteration by
    :class:`~densecl_lab.demo.DemoProgressHook`); dividing the weights
    out makes the curves comparable with MoCo's and continuous where
    ``lambda`` switches on. ``CE_dense`` exists only where ``lambda > 0``.

    Args:
        label (str): the algorithm's name, prefixed to the curve names.
        records (Sequence[dict]): ``{'iter', 'loss', ...}`` per iteration.

    Returns:
        dict: curve name -> ``[(iter, value), ...]``.
    """
    if any('lambda' in r for r in records):
        single, dense = [], []
        for r in records:
            lam = r['lambda']
            if lam < 1 and 'loss_single' in r:
                single.append((r['iter'], r['loss_single'] / (1 - lam)))
            if lam > 0 and 'loss_dense' in r:
                dense.append((r['iter'], r['loss_dense'] / lam))
        return {f'{label}: global InfoNCE': single,
                f'{label}: dense InfoNCE': dense}
    return {f'{label}: InfoNCE': [(r['iter'], r['loss']) for r in records
                                  if 'loss' in r]}


def plot_loss_curves(curves: Dict[str, Sequence[Tuple[int, float]]],
                     path: str, window: int = 10,
                     chance: Optional[float] = None) -> str:
    """Plot training curves (matplotlib Agg): raw values faint, a
    ``window``-iteration moving average bold.

    Args:
        curves (dict): curve name -> ``[(iter, value), ...]`` (e.g. from
            :func:`infonce_curves`).
        path (str): the PNG to write.
        window (int): smoothing window. Defaults to 10.
        chance (float, optional): draw this level as a dashed line (the
            InfoNCE of a uniform guess, ``ln(K + 1)``). Defaults to None.

    Returns:
        str: ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7.5, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = ['tab:blue', 'tab:orange', 'tab:green', 'tab:red',
               'tab:purple', 'tab:brown']
    for i, (name, points) in enumerate(curves.items()):
        if not points:
            continue
        its, vals = zip(*points)
        colour = colours[i % len(colours)]
        ax.plot(its, vals, color=colour, alpha=0.25, linewidth=0.8)
        ax.plot(its, moving_average(vals, window), color=colour,
                linewidth=1.8, label=name)
    if chance is not None:
        ax.axhline(chance, color='grey', linestyle='--', linewidth=1,
                   label=f'uniform guess, ln(K+1) = {chance:.2f}')
        ax.set_ylim(top=max(ax.get_ylim()[1], chance * 1.05))
    ax.set_xlabel('iteration')
    ax.set_ylabel('InfoNCE (cross-entropy, nats)')
    ax.set_title('Pre-training losses (same data, schedule and seed)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path: str) -> str:
    """Tight layout, then save ``fig`` to ``path`` (its folder created).

    Returns:
        str: ``path``.
    """
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path
