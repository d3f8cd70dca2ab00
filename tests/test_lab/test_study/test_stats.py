# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The study's statistics on analytic values."""
import math

import pytest

from densecl_lab.study.stats import (T975, mean_std, paired_difference,
                                     t_quantile)


def test_paired_difference_known_interval():
    # differences 1, 2, 3: mean 2, sd 1, sem 1/sqrt(3), t(0.975, 2) = 4.3027
    a = {0: 11.0, 1: 22.0, 2: 33.0}
    b = {0: 10.0, 1: 20.0, 2: 30.0}
    d = paired_difference(a, b)
    assert d['seeds'] == [0, 1, 2] and d['diffs'] == [1.0, 2.0, 3.0]
    assert d['n'] == 3 and d['mean'] == pytest.approx(2.0)
    assert d['std'] == pytest.approx(1.0)
    half = 4.302653 / math.sqrt(3)
    assert d['t'] == pytest.approx(4.302653, abs=1e-5)
    assert d['lo'] == pytest.approx(2.0 - half, abs=1e-5)
    assert d['hi'] == pytest.approx(2.0 + half, abs=1e-5)


def test_paired_difference_pairs_by_seed_and_constant_shift():
    # only common seeds pair; a constant difference has a zero-width interval
    a = {0: 5.0, 1: 6.0, 2: 7.0, 9: 100.0}
    b = {2: 6.5, 1: 5.5, 0: 4.5, 7: -3.0}
    d = paired_difference(a, b)
    assert d['seeds'] == [0, 1, 2] and d['n'] == 3
    assert d['lo'] == pytest.approx(0.5) and d['hi'] == pytest.approx(0.5)


def test_paired_difference_two_seeds_and_too_few():
    # n = 2: differences 0 and 2 -> mean 1, sd sqrt(2), t(0.975, 1) = 12.706
    d = paired_difference({0: 1.0, 1: 3.0}, {0: 1.0, 1: 1.0})
    assert d['mean'] == pytest.approx(1.0)
    assert d['hi'] - d['mean'] == pytest.approx(12.706205 * math.sqrt(2) /
                                                math.sqrt(2), abs=1e-4)
    one = paired_difference({0: 1.0}, {0: 0.5})
    assert one['n'] == 1 and one['mean'] == 0.5 and one['lo'] is None
    none = paired_difference({}, {1: 1.0})
    assert none['n'] == 0 and none['mean'] is None
    with pytest.raises(ValueError):
        paired_difference(a={0: 1.0}, b={0: 1.0}, confidence=1.5)


def test_t_quantile_matches_table_and_mean_std():
    for df in (1, 2, 3, 4, 9):
        assert t_quantile(0.975, df) == pytest.approx(T975[df], abs=1e-5)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)
    assert mean_std([2.0, 4.0, 6.0]) == dict(n=3, mean=4.0, std=2.0)
    assert mean_std([3.0]) == dict(n=1, mean=3.0, std=None)
    assert mean_std([])['mean'] is None
