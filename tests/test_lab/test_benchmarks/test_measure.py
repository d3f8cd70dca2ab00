# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``densecl_lab.benchmarks.measure``: the load record of every timing
tool (load average before, other processes' CPU during, with the clocks and
counters replaced) and ``measured_run``, the wrapper the CLIs share."""
import json

import pytest
import torch

from densecl_lab.benchmarks import measure


@pytest.mark.parametrize('load,busy', [(0.4, False), (0.9, False),
                                       (1.2, True), (3.0, True)])
def test_load_record_warns_above_half_a_core_before(monkeypatch, load, busy):
    monkeypatch.setattr(measure.os, 'getloadavg', lambda: (load, 0.2, 0.1))
    monkeypatch.setattr(measure.os, 'cpu_count', lambda: 2)
    monkeypatch.setattr(measure, 'machine_busy_seconds', lambda: None)
    lines = []
    with measure.LoadRecord(lines.append) as rec:
        pass
    out = rec.as_dict()
    assert out['before']['load'] == [load, 0.2, 0.1]
    assert out['before']['cores'] == 2
    assert out['others_cores'] is None
    assert out['quiet'] is (not busy)
    assert len(lines) == (1 if busy else 0)  # on entry
    if busy:
        assert 'not be quiet-machine figures' in lines[0]
        assert 'BUSY' in measure.format_load(out)
    else:
        assert measure.format_load(out).endswith('quiet')


@pytest.mark.parametrize('machine,own,others,shared', [
    (3.0, 3.0, 0.0, False),   # all the busy time was ours
    (3.6, 3.0, 0.6, True),    # another job: 0.6 s of 2 s = 0.3 cores
    (3.3, 3.0, 0.3, False),   # 0.15 cores: below 0.1 per core (0.2)
    (2.9, 3.0, 0.0, False),   # clock granularity: never negative
])
def test_load_record_counts_other_processes_cpu(monkeypatch, machine, own,
                                                others, shared):
    """Busy seconds 100 -> 100 + machine, ours 10 -> 10 + own, over 2 s of
    wall time on 2 cores: others = (machine - own) / 2 cores' worth."""
    monkeypatch.setattr(measure.os, 'getloadavg', lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(measure.os, 'cpu_count', lambda: 2)
    busy = iter([100.0, 100.0 + machine])
    mine = iter([10.0, 10.0 + own])
    clock = iter([50.0, 52.0])
    monkeypatch.setattr(measure, 'machine_busy_seconds', lambda: next(busy))
    monkeypatch.setattr(measure, 'own_cpu_seconds', lambda: next(mine))
    monkeypatch.setattr(measure.time, 'perf_counter', lambda: next(clock))
    lines = []
    with measure.LoadRecord(lines.append) as rec:
        pass
    assert rec.others_cores == pytest.approx(others / 2)
    assert rec.quiet is (not shared)
    assert len(lines) == (1 if shared else 0)
    if shared:
        assert 'other processes used 0.30 of 2 cores' in lines[0]


def test_machine_busy_seconds_reads_proc_stat():
    busy = measure.machine_busy_seconds()
    if busy is None:
        pytest.skip('no /proc/stat')
    own = measure.own_cpu_seconds()
    assert busy >= own >= 0
    assert measure.machine_busy_seconds() >= busy


def test_load_record_without_a_load_average(monkeypatch):
    def unavailable():
        raise OSError('no load average')
    monkeypatch.setattr(measure.os, 'getloadavg', unavailable)
    with measure.LoadRecord(lambda s: None) as rec:
        pass
    assert rec.as_dict()['before']['load'] is None
    assert 'n/a' in measure.format_load(rec.as_dict())


@pytest.mark.parametrize('others_now,busy', [(0.05, False), (0.5, True)])
def test_load_record_samples_the_cpu_when_the_average_is_high(
        monkeypatch, others_now, busy):
    """A high 1-minute average right after a job ended is not a busy
    machine: a 1-second sample of the other processes decides."""
    monkeypatch.setattr(measure.os, 'getloadavg', lambda: (1.8, 0.9, 0.5))
    monkeypatch.setattr(measure.os, 'cpu_count', lambda: 2)
    monkeypatch.setattr(measure.LoadRecord, '_sample_others',
                        lambda self, seconds: others_now)
    monkeypatch.setattr(measure, 'machine_busy_seconds', lambda: None)
    lines = []
    with measure.LoadRecord(lines.append) as rec:
        pass
    assert rec.before['others_cores_now'] == others_now
    assert rec.quiet is (not busy)
    assert len(lines) == (1 if busy else 0)



def test_measured_run_wraps_threads_load_report_and_json(monkeypatch,
                                                         tmp_path):
    monkeypatch.setattr(measure.os, 'getloadavg', lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(measure.os, 'cpu_count', lambda: 2)
    monkeypatch.setattr(measure, 'machine_busy_seconds', lambda: None)
    threads = torch.get_num_threads()
    seen = {}

    def measure_fn():
        seen['threads'] = torch.get_num_threads()
        return {'value': 3, 'path': tmp_path}  # a Path: written as text

    lines = []
    out = tmp_path / 'r.json'
    try:
        res = measure.measured_run(measure_fn, lambda r: f"value {r['value']}",
                                   threads=1, json_path=str(out),
                                   log=lines.append)
    finally:
        torch.set_num_threads(threads)
    assert seen['threads'] == 1
    assert res['value'] == 3 and res['load']['quiet'] is True
    assert lines[0] == 'value 3' and lines[1].startswith('load average')
    saved = json.loads(out.read_text())
    assert saved['path'] == str(tmp_path) and saved['load'] == res['load']
    # without a report only the load line is logged, and no file is written
    lines.clear()
    measure.measured_run(lambda: {}, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith('load average')
