# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Is a pre-training run learning, collapsing, or not learning yet?

Reads the ``health_*`` scalars that :class:`BaseMomentumContrast` logs every
``model.health_interval`` iterations (see ``docs/pretraining_health.md``) from
MMEngine's ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (the newest run),
and gives one verdict with the numbers behind it. The rules (defaults in
:class:`Rules`), applied to the health rows in order:

1. **collapsing** if, over the last ``window`` share of the health rows
   (default the last 25%), the mean embedding std x sqrt(D)
   (``health_emb_std``) is below ``std_collapse`` (0.15), or the mean
   positive and negative cosines are both above ``cos_collapse`` (0.95).
   Random init gives ~0.37 at R18 80 px (issue 19); the collapsed demo runs
   of issue 19 ended at 0.02-0.12 with cosines 0.994 / 0.980; the collapsed
   tiny test run (lr 3.0) reads 0.003-0.008 from its second iteration on,
   with cosines 0.997 / 0.996; the healthy one (lr 0.03) starts at 0.30,
   never goes below 0.20 and ends at 0.53.
2. **learning** if the queue has filled (``health_queue_fill`` == 1), and,
   over the rows from then on, split into a first and a last ``window`` share:
   the InfoNCE (``health_single_infonce`` for DenseCL, else ``loss``) of the
   last window is at least ``loss_drop`` (3%) below that of the first; the
   gap ``pos_cos - neg_cos`` of the last window is above 0 and at least
   ``gap_growth`` (0.02) above that of the first; and rule 1 did not fire.
   Before the queue has filled the negatives are partly the random init, so
   the loss is not yet comparable. At least ``min_rows`` (4) post-fill rows
   are needed.
3. **not learning yet** otherwise; the verdict lists which test of rule 2
   failed.

:func:`diagnose_work_dir` is what ``tools/analysis/diagnose_pretraining.py``
runs: it writes ``diagnosis.png`` (the curves), ``diagnosis.json`` (verdict,
numbers, rules) and ``diagnosis.txt`` (the one-line verdict).
"""
import dataclasses
import glob
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

#: the three verdicts
VERDICTS = ('collapsing', 'learning', 'not learning yet')
#: the key every health row has (the metrics are logged together)
STD_KEY = 'health_emb_std'


@dataclasses.dataclass(frozen=True)
class Rules:
    """The thresholds of the verdict (see the module docstring).

    Args:
        window (float): Share of the rows that makes a window (first / last).
            Defaults to 0.25.
        std_collapse (float): Collapsing below this embedding std x sqrt(D).
            Defaults to 0.15.
        cos_collapse (float): Collapsing when both cosines exceed this.
            Defaults to 0.95.
        loss_drop (float): Relative fall of the InfoNCE needed to call it
            learning. Defaults to 0.03.
        gap_growth (float): Growth of ``pos_cos - neg_cos`` needed to call it
            learning. Defaults to 0.02.
        min_rows (int): Post-fill health rows needed. Defaults to 4.
    """
    window: float = 0.25
    std_collapse: float = 0.15
    cos_collapse: float = 0.95
    loss_drop: float = 0.03
    gap_growth: float = 0.02
    min_rows: int = 4

    def __post_init__(self):
        if not 0 < self.window <= 0.5:
            raise ValueError(
                f'Rules.window must be in (0, 0.5], got {self.window!r}')
        if not isinstance(self.min_rows, int) or self.min_rows < 2:
            raise ValueError(
                f'Rules.min_rows must be an int >= 2, got {self.min_rows!r}')


def find_scalars(work_dir: str) -> str:
    """The ``scalars.json`` of the newest run in ``work_dir``.

    Args:
        work_dir (str): A Runner's work dir (``WORK_DIR/<timestamp>/vis_data/
            scalars.json`` inside), or one ``<timestamp>`` folder of it.

    Returns:
        str: The path of the newest (by timestamp folder name) that exists.

    Raises:
        FileNotFoundError: ``work_dir`` is not a folder, or holds none.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir not found: {work_dir!r}')
    own = osp.join(work_dir, 'vis_data', 'scalars.json')
    if osp.isfile(own):
        return own
    pattern = osp.join(work_dir, '*', 'vis_data', 'scalars.json')
    found = sorted(glob.glob(pattern))
    if not found:
        raise FileNotFoundError(
            f'no MMEngine scalars found: nothing matches {pattern!r} (is '
            f'{work_dir!r} the work_dir of a run with a LocalVisBackend?)')
    return found[-1]


def load_scalars(path: str) -> List[dict]:
    """The rows of a ``scalars.json`` (JSON lines) that have an ``iter``.

    Raises:
        ValueError: A line is not a JSON object, naming the file and line.
    """
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f'{path}:{n}: not a JSON line ({e})') from None
            if not isinstance(row, dict):
                raise ValueError(
                    f'{path}:{n}: expected a JSON object, got {row!r}')
            if 'iter' in row:
                rows.append(row)
    return rows


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _windows(n: int, share: float) -> Tuple[slice, slice]:
    """First and last window of ``n`` rows, each ``ceil(share * n)`` long."""
    w = max(1, math.ceil(share * n))
    return slice(0, w), slice(n - w, n)


def diagnose(rows: List[dict],
             rules: Rules = Rules(),
             source: str = 'the scalars') -> dict:
    """The verdict of :mod:`this module <.pretraining_diagnosis>` on rows.

    Args:
        rows (list[dict]): Scalar rows with ``iter`` (as :func:`load_scalars`
            returns them).
        rules (Rules): The thresholds. Defaults to ``Rules()``.
        source (str): Named in the error message. Defaults to 'the scalars'.

    Returns:
        dict: ``verdict`` (one of :data:`VERDICTS`), ``summary`` (one line),
        ``reasons`` (list of str), ``numbers`` (the window means it used) and
        ``rules``.

    Raises:
        ValueError: No row has the ``health_*`` keys.
    """
    health = sorted((r for r in rows if STD_KEY in r), key=lambda r: r['iter'])
    if not health:
        raise ValueError(
            f'{source} has no health_* keys ({STD_KEY!r} is in no row): '
            'set model.health_interval (e.g. 10, with the logger interval '
            'a divisor of it) in the config and train again')
    loss_key = 'health_single_infonce'  # DenseCL, before the lambda weighting
    if loss_key not in health[-1]:
        loss_key = 'loss'
    _, last = _windows(len(health), rules.window)
    tail = health[last]
    std = _mean([r[STD_KEY] for r in tail])
    pos = _mean([r['health_pos_cos'] for r in tail])
    negs = [r['health_neg_cos'] for r in tail if 'health_neg_cos' in r]
    neg = _mean(negs) if negs else float('nan')
    numbers = dict(iters=[health[0]['iter'], health[-1]['iter']],
                   health_rows=len(health),
                   last_window_iters=[tail[0]['iter'], tail[-1]['iter']],
                   last_emb_std=std,
                   last_pos_cos=pos,
                   last_neg_cos=neg,
                   loss_key=loss_key)
    reasons = []
    if std < rules.std_collapse:
        reasons.append(f'emb std x sqrt(D) {std:.3f} < {rules.std_collapse}')
    if pos > rules.cos_collapse and neg > rules.cos_collapse:
        reasons.append(f'pos cos {pos:.3f} and neg cos {neg:.3f} both > '
                       f'{rules.cos_collapse}')
    if reasons:
        return _result('collapsing', reasons, numbers, rules, 'last window')

    filled = [r for r in health if r.get('health_queue_fill', 0) >= 1 - 1e-6]
    if not filled:
        fill = health[-1].get('health_queue_fill', float('nan'))
        return _result('not learning yet',
                       [f'queue not filled yet (share {fill:.2f} < 1)'],
                       numbers, rules, 'last window')
    start = filled[0]['iter']
    post = [r for r in health if r['iter'] >= start]
    losses = [r for r in rows if r['iter'] >= start and loss_key in r]
    numbers.update(fill_iter=start, post_fill_rows=len(post))
    if len(post) < rules.min_rows or len(losses) < rules.min_rows:
        return _result('not learning yet', [
            f'{len(post)} health rows after the queue filled at iter {start} '
            f'(need {rules.min_rows})'
        ], numbers, rules, 'after the queue filled')
    losses.sort(key=lambda r: r['iter'])
    lf, ll = _windows(len(losses), rules.window)
    loss_first, loss_last = (_mean([r[loss_key] for r in losses[s]])
                             for s in (lf, ll))
    gf, gl = _windows(len(post), rules.window)
    gaps = [r['health_pos_cos'] - r.get('health_neg_cos', 0) for r in post]
    gap_first, gap_last = _mean(gaps[gf]), _mean(gaps[gl])
    drop = (loss_first - loss_last) / abs(loss_first) if loss_first else 0.
    numbers.update(loss_first=loss_first,
                   loss_last=loss_last,
                   loss_drop=drop,
                   gap_first=gap_first,
                   gap_last=gap_last)
    failed = []
    if drop < rules.loss_drop:
        failed.append(f'{loss_key} {loss_first:.3f} -> {loss_last:.3f} '
                      f'(fall {drop:.1%} < {rules.loss_drop:.0%})')
    if gap_last <= 0:
        failed.append(f'pos-neg cos gap {gap_last:.3f} <= 0')
    if gap_last - gap_first < rules.gap_growth:
        failed.append(f'pos-neg cos gap {gap_first:.3f} -> {gap_last:.3f} '
                      f'(growth < {rules.gap_growth})')
    if failed:
        return _result('not learning yet', failed, numbers, rules,
                       'after the queue filled')
    return _result('learning', [
        f'{loss_key} {loss_first:.3f} -> {loss_last:.3f} (fall {drop:.1%})',
        f'pos-neg cos gap {gap_first:.3f} -> {gap_last:.3f}',
        f'emb std x sqrt(D) {std:.3f}'
    ], numbers, rules, 'after the queue filled')


def _result(verdict: str, reasons: List[str], numbers: dict, rules: Rules,
            where: str) -> dict:
    a, b = numbers['iters']
    summary = f'{verdict} (iters {a}-{b}, {where}): ' + '; '.join(reasons)
    return dict(verdict=verdict,
                summary=summary,
                reasons=reasons,
                numbers=numbers,
                rules=dataclasses.asdict(rules))


def _series(rows: List[dict], key: str) -> Tuple[List[int], List[float]]:
    pts = [(r['iter'], r[key]) for r in rows if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def _finish_axis(ax, title: str) -> None:
    """Title, iteration axis, grid and (when it has lines) legend."""
    ax.set_title(title)
    ax.set_xlabel('iter')
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)


def plot_health(rows: List[dict],
                out: str,
                title: str = '',
                rules: Rules = Rules()) -> str:
    """Draw loss, pos/neg cosine, emb std x sqrt(D), alignment/uniformity and
    the queue shares over the iterations into the png ``out`` (Agg canvas;
    the global matplotlib backend is left alone).

    Returns:
        str: ``out``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(15, 8))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3).ravel()
    panels = [
        ('loss', [
            'loss', 'loss_single', 'loss_dense', 'health_single_infonce',
            'health_dense_infonce'
        ]),
        ('cosine', ['health_pos_cos', 'health_neg_cos']),
        ('emb std x sqrt(D)', [STD_KEY]),
        ('Wang & Isola', ['health_align', 'health_uniform']),
        ('queue shares', ['health_queue_fill', 'health_own_in_queue']),
    ]
    for ax, (name, keys) in zip(axes, panels):
        for key in keys:
            x, y = _series(rows, key)
            if x:
                ax.plot(x, y, marker='.', label=key)
        if name.startswith('emb std'):
            ax.axhline(rules.std_collapse,
                       color='r',
                       ls='--',
                       label=f'collapse < {rules.std_collapse}')
        if name == 'cosine':
            ax.axhline(rules.cos_collapse,
                       color='r',
                       ls='--',
                       label=f'collapse > {rules.cos_collapse}')
        _finish_axis(ax, name)
    axes[-1].axis('off')
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    return out


def diagnose_work_dir(work_dir: str,
                      out_dir: Optional[str] = None,
                      rules: Rules = Rules()) -> Dict:
    """Diagnose the newest run of ``work_dir``; write the plot and verdict.

    Args:
        work_dir (str): A Runner's work dir (see :func:`find_scalars`).
        out_dir (str, optional): Where ``diagnosis.png``, ``diagnosis.json``
            and ``diagnosis.txt`` go. Defaults to the run's timestamp folder.
        rules (Rules): The thresholds. Defaults to ``Rules()``.

    Returns:
        dict: :func:`diagnose`'s result plus ``scalars`` and the three
        ``files``.
    """
    path = find_scalars(work_dir)
    rows = load_scalars(path)
    result = diagnose(rows, rules, source=path)
    out_dir = out_dir or osp.dirname(osp.dirname(path))
    os.makedirs(out_dir, exist_ok=True)
    files = {
        ext: osp.join(out_dir, f'diagnosis.{ext}')
        for ext in ('png', 'json', 'txt')
    }
    plot_health(rows, files['png'], title=result['summary'], rules=rules)
    result.update(scalars=path, files=files)
    with open(files['json'], 'w') as f:
        json.dump(result, f, indent=2)
    with open(files['txt'], 'w') as f:
        f.write(result['summary'] + '\n')
    return result


#: the panels of :func:`plot_runs`: title and the keys it tries, first found
COMPARE_PANELS = (
    ('InfoNCE (global)', ('health_single_infonce', 'loss')),
    ('emb std x sqrt(D)', (STD_KEY, )),
    ('pos cosine', ('health_pos_cos', )),
    ('neg cosine (queue)', ('health_neg_cos', )),
)


def plot_runs(runs: Dict[str, List[dict]], out: str, title: str = '',
              rules: Rules = Rules()) -> str:
    """Overlay the health curves of several runs (one line per run) into the
    png ``out``: the global InfoNCE, the embedding std x sqrt(D) with the
    collapse threshold, and the positive and negative cosines.

    Args:
        runs (dict[str, list[dict]]): Label -> the run's scalar rows
            (:func:`load_scalars`).
        out (str): The png file.
        title (str): Figure title. Defaults to ``''``.
        rules (Rules): For the collapse line. Defaults to ``Rules()``.

    Returns:
        str: ``out``.
    """
    compare_figure(runs, title, rules).savefig(out, dpi=80)
    return out


def compare_figure(runs: Dict[str, List[dict]], title: str = '',
                   rules: Rules = Rules()):
    """The matplotlib ``Figure`` that :func:`plot_runs` saves."""
    if not runs:
        raise ValueError('plot_runs needs at least one run')
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(16, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(COMPARE_PANELS))
    for ax, (name, keys) in zip(axes, COMPARE_PANELS):
        for label, rows in runs.items():
            key = next((k for k in keys if any(k in r for r in rows)), None)
            if key is not None:
                x, y = _series(rows, key)
                ax.plot(x, y, marker='.', label=label)
        if name.startswith('emb std'):
            ax.axhline(rules.std_collapse, color='r', ls='--',
                       label=f'collapse < {rules.std_collapse}')
        _finish_axis(ax, name)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
