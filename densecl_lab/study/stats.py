# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Summary statistics of the small-scale study: mean ± std over seeds and
the paired (by seed) difference of two arms with a Student-t interval."""
import math
from typing import Dict, Mapping, Optional, Sequence

#: two-sided 95 % Student-t quantiles t_{0.975, df}, for when scipy is
#: missing (values from any t table)
T975 = {1: 12.706205, 2: 4.302653, 3: 3.182446, 4: 2.776445, 5: 2.570582,
        6: 2.446912, 7: 2.364624, 8: 2.306004, 9: 2.262157, 10: 2.228139,
        11: 2.200985, 12: 2.178813, 13: 2.160369, 14: 2.144787,
        15: 2.131450, 16: 2.119905, 17: 2.109816, 18: 2.100922,
        19: 2.093024, 20: 2.085963, 25: 2.059539, 30: 2.042272,
        40: 2.021075, 60: 2.000298, 120: 1.979930}


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom.

    Uses ``scipy.stats.t`` when scipy is installed; without it only
    ``q = 0.975`` is known (:data:`T975`, the next smaller tabulated df
    beyond 20, which errs on the wide side).

    Raises:
        ValueError: for ``df < 1``, or an untabulated ``q`` without scipy.
    """
    if df < 1:
        raise ValueError(f'df must be >= 1, got {df}')
    try:
        from scipy.stats import t
    except ImportError:
        if abs(q - 0.975) > 1e-12:
            raise ValueError(f'without scipy only q=0.975 is tabulated, '
                             f'got {q}') from None
        return T975[max(k for k in T975 if k <= df)]
    return float(t.ppf(q, df))


def mean_std(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (``ddof=1``; None for one value).

    Returns:
        dict: ``n``, ``mean``, ``std`` (None when ``values`` is empty).
    """
    n = len(values)
    if n == 0:
        return dict(n=0, mean=None, std=None)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) \
        if n > 1 else None
    return dict(n=n, mean=mean, std=std)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float],
                      confidence: float = 0.95) -> Dict[str, object]:
    """The difference ``a - b`` paired by seed, with a t-interval.

    Only seeds present in both are paired. With differences ``d_i`` over
    ``n`` seeds, the interval is ``mean(d) ± t_{(1+c)/2, n-1} sd(d) /
    sqrt(n)`` (``sd`` with ``ddof=1``); it needs ``n >= 2``.

    Args:
        a (Mapping[int, float]): seed -> value of the first arm (DenseCL).
        b (Mapping[int, float]): seed -> value of the second arm (MoCo v2).
        confidence (float): Defaults to 0.95.

    Returns:
        dict: ``seeds``, ``diffs`` (per seed, in seed order), ``n``,
        ``mean``, ``std``, ``sem``, ``t``, ``lo``, ``hi`` and
        ``confidence`` (None where ``n`` is too small).
    """
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    seeds = sorted(set(a) & set(b))
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    stats = mean_std(diffs)
    out: Dict[str, object] = dict(seeds=seeds, diffs=diffs, n=stats['n'],
                                  mean=stats['mean'], std=stats['std'],
                                  sem=None, t=None, lo=None, hi=None,
                                  confidence=confidence)
    if stats['n'] >= 2:
        sem = stats['std'] / math.sqrt(stats['n'])
        t = t_quantile((1 + confidence) / 2, stats['n'] - 1)
        out.update(sem=sem, t=t, lo=stats['mean'] - t * sem,
                   hi=stats['mean'] + t * sem)
    return out
