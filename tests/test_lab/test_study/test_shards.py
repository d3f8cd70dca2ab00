# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Splitting the study's units over parallel shards (the shard processes
run end to end in ``test_small_scale_study.py``)."""
import pytest

from densecl_lab.study.shards import assign_shards


def test_assign_shards_covers_every_unit_once_and_balances():
    units = [(s, b) for b in (1, 2, 3) for s in (0, 1)]
    costs = [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]
    owner = assign_shards(units, costs, 2)
    assert set(owner) == set(units) and set(owner.values()) == {0, 1}
    loads = [sum(c for u, c in zip(units, costs) if owner[u] == k)
             for k in (0, 1)]
    assert loads == [7.0, 7.0]
    # longest first, ties to the lower shard: the same split every call
    assert owner == assign_shards(units, costs, 2)
    assert owner[(0, 3)] == 0 and owner[(1, 3)] == 1
    # one shard takes all; more shards than units leaves some empty
    assert set(assign_shards(units, costs, 1).values()) == {0}
    many = assign_shards(units, costs, 8)
    assert sorted(many.values()) == list(range(6))
    with pytest.raises(ValueError, match='shards must be >= 1'):
        assign_shards(units, costs, 0)
    with pytest.raises(ValueError, match='6 units but 5 costs'):
        assign_shards(units, costs[:5], 2)


def test_a_failing_shard_writes_its_traceback_to_its_log(tmp_path):
    """The shard's stderr is its log; an error must reach the log before the
    log closes (the parent only sees the exit code)."""
    import multiprocessing as mp

    from densecl_lab.study.shards import run_shard
    from densecl_lab.study.study import Study
    log = tmp_path / 'shard1of1.log'
    ctx = mp.get_context('spawn')
    # no 'settings': the shard fails at once, inside its log
    proc = ctx.Process(target=run_shard, args=(
        Study, {'work_dir': str(tmp_path)}, (0, 1), str(log), 1))
    proc.start()
    proc.join(120)
    assert proc.exitcode not in (0, None)
    text = log.read_text()
    assert text.startswith('shard 1/1: pid ')
    assert 'Traceback (most recent call last)' in text
    assert "missing 3 required positional arguments: 'data_dir', " \
        "'cache_dir', and 'settings'" in text
