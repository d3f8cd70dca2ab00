# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``tools/analysis/diagnose_pretraining.py``: its verdict on two real Runner
trainings of the tiny models (one collapsed on purpose, one healthy), its
files and errors, and the verdict rules on synthetic scalar series.

The real runs (seed 0, 40 iterations, batch 4, 32 px views of the 7 photos,
``health_interval=2``; a few seconds each) gave, when the test was written:
- healthy (MoCo v2, SGD lr 0.03, K = 8): loss 2.20 -> 1.80 after the queue
  filled (-18%), pos-neg cosine gap 0.016 -> 0.177, emb std x sqrt(D) 0.53
  over the last window (0.30 at iteration 2, lowest 0.20);
- collapsed (lr 3.0, finite): emb std x sqrt(D) 0.003-0.008 from iteration
  2 on, pos / neg cosines 0.997 / 0.996, loss -> ln(K + 1).
"""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest

from densecl_lab.analysis.pretraining_diagnosis import (Rules, compare_figure,
                                                        diagnose,
                                                        diagnose_work_dir,
                                                        find_scalars,
                                                        plot_runs)
from densecl_plugin.models.algorithms.base import DEFAULT_DATA_PREPROCESSOR
from tiny_models import tiny_model_cfg, tiny_runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'diagnose_pretraining.py')


def _train(work_dir, image_dir, algo='MoCoV2', lr=0.03, health_interval=2,
           max_iters=40, **model):
    """A real Runner training of a tiny model; returns the work dir."""
    cfg = tiny_model_cfg(algo, base_channels=8, hid_channels=16, feat_dim=8, queue_len=8,
                         momentum=0.99, health_interval=health_interval,
                         data_preprocessor=DEFAULT_DATA_PREPROCESSOR, **model)
    tiny_runner(work_dir, cfg, image_dir=image_dir, max_iters=max_iters,
                optimizer=dict(type='SGD', lr=lr, momentum=0.9, weight_decay=1e-4),
                log_interval=2).train()
    return work_dir


@pytest.fixture(scope='module')
def runs(real_image_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp('diagnose')
    return dict(healthy=_train(str(root / 'healthy'), real_image_dir),
                collapsed=_train(str(root / 'collapsed'), real_image_dir, lr=3.0),
                no_health=_train(str(root / 'no_health'), real_image_dir,
                                 health_interval=0, max_iters=2))


def test_real_runs_healthy_learning_collapsed_collapsing(runs, tmp_path):
    healthy = diagnose_work_dir(runs['healthy'])
    collapsed = diagnose_work_dir(runs['collapsed'], out_dir=str(tmp_path / 'out'))
    assert healthy['verdict'] == 'learning', healthy['summary']
    assert collapsed['verdict'] == 'collapsing', collapsed['summary']
    h, c = healthy['numbers'], collapsed['numbers']
    assert h['last_emb_std'] > 0.3 and c['last_emb_std'] < 0.05
    assert c['last_pos_cos'] > 0.99 and c['last_neg_cos'] > 0.99
    assert h['loss_last'] < h['loss_first'] and h['gap_last'] > h['gap_first'] > -1
    # the files: a real png, the json result, the one-line verdict
    for result, where in ((healthy, osp.dirname(osp.dirname(healthy['scalars']))),
                          (collapsed, str(tmp_path / 'out'))):
        files = result['files']
        assert {osp.dirname(f) for f in files.values()} == {where}
        with open(files['png'], 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert osp.getsize(files['png']) > 10_000
        with open(files['json']) as f:
            assert json.load(f)['verdict'] == result['verdict']
        with open(files['txt']) as f:
            lines = f.read().splitlines()
        assert lines == [result['summary']] and lines[0].startswith(result['verdict'])


def test_cli_prints_verdict_and_errors(runs, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                              text=True, cwd=REPO)
    out = cli(runs['collapsed'], '--out-dir', str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('collapsing') and 'emb std x sqrt(D)' in out.stdout
    assert osp.isfile(tmp_path / 'diagnosis.png')
    missing = str(tmp_path / 'no_such_dir')
    out = cli(missing)
    assert out.returncode != 0 and missing in out.stderr
    out = cli(str(tmp_path))  # a folder without a run
    assert out.returncode != 0 and 'vis_data' in out.stderr and str(tmp_path) in out.stderr
    out = cli(runs['no_health'])
    assert out.returncode != 0 and 'model.health_interval' in out.stderr
    assert find_scalars(runs['no_health']) in out.stderr


def test_cli_compare_draws_both_runs(runs, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                              text=True, cwd=REPO)
    out = cli(runs['healthy'], '--out-dir', str(tmp_path), '--compare', runs['collapsed'],
              '--labels', 'lr 0.03', 'lr 3.0')
    assert out.returncode == 0, out.stderr
    assert osp.getsize(tmp_path / 'comparison.png') > 10_000
    assert f"wrote {tmp_path / 'comparison.png'}" in out.stdout
    out = cli(runs['healthy'], '--out-dir', str(tmp_path), '--compare', runs['collapsed'],
              '--labels', 'only one')
    assert out.returncode != 0 and '--labels gives 1 labels for 2 runs' in out.stderr


def test_compare_figure_has_a_line_per_run():
    rows_a = [dict(iter=i, loss=5.0 - i / 10, health_emb_std=0.4, health_pos_cos=0.5,
                   health_neg_cos=0.2) for i in range(1, 6)]
    rows_b = [dict(iter=i, loss=4.0, health_single_infonce=3.0 + i / 10, health_emb_std=0.05,
                   health_pos_cos=0.99, health_neg_cos=0.98) for i in range(1, 4)]
    fig = compare_figure({'a': rows_a, 'b': rows_b})
    infonce, std, pos, neg = fig.axes[:4]
    assert [len(ax.lines) for ax in (infonce, std, pos, neg)] == [2, 3, 2, 2]
    # DenseCL's global InfoNCE is preferred over its total loss
    assert list(infonce.lines[1].get_ydata()) == pytest.approx([3.1, 3.2, 3.3])
    assert list(infonce.lines[0].get_ydata()) == pytest.approx([4.9, 4.8, 4.7, 4.6, 4.5])
    assert std.lines[2].get_ydata()[0] == Rules().std_collapse
    with pytest.raises(ValueError, match='at least one run'):
        plot_runs({}, 'unused.png')


def test_newest_run_is_read(runs, tmp_path):
    import shutil
    work_dir = tmp_path / 'w'
    old = osp.dirname(osp.dirname(find_scalars(runs['collapsed'])))
    new = osp.dirname(osp.dirname(find_scalars(runs['healthy'])))
    shutil.copytree(old, work_dir / '20000101_000000')
    shutil.copytree(new, work_dir / '20990101_000000')
    assert diagnose_work_dir(str(work_dir))['verdict'] == 'learning'
    # a timestamp folder itself is accepted too
    assert diagnose_work_dir(str(work_dir / '20000101_000000'))['verdict'] == 'collapsing'


# ---- the rules on synthetic series -------------------------------------

def _rows(n=40, loss=lambda t: 2.2, pos=lambda t: 0.8, neg=lambda t: 0.78,
          std=lambda t: 0.5, fill_at=0.1, extra=None):
    """``n`` health rows (iters 2, 4, ...) with curves of t in [0, 1]."""
    rows = []
    for i in range(n):
        t = i / (n - 1)
        rows.append(dict(iter=2 * (i + 1), loss=loss(t), health_pos_cos=pos(t),
                         health_neg_cos=neg(t), health_emb_std=std(t),
                         health_queue_fill=min(1., t / fill_at) if fill_at else 1.,
                         **(extra(t) if extra else {})))
    return rows


LEARNING = dict(loss=lambda t: 2.2 - 0.3 * t, pos=lambda t: 0.8 + 0.06 * t,
                neg=lambda t: 0.8 - 0.05 * t)


def test_rule_learning_and_each_failed_test():
    assert diagnose(_rows(**LEARNING))['verdict'] == 'learning'
    # loss flat (a 1% fall < 3%)
    r = diagnose(_rows(**dict(LEARNING, loss=lambda t: 2.2 - 0.022 * t)))
    assert r['verdict'] == 'not learning yet' and 'fall' in r['summary']
    # a 4% fall is enough
    assert diagnose(_rows(**dict(LEARNING, loss=lambda t: 2.2 - 0.11 * t)))['verdict'] \
        == 'learning'
    # gap growing but still negative
    r = diagnose(_rows(**dict(LEARNING, neg=lambda t: 0.9 - 0.05 * t)))
    assert r['verdict'] == 'not learning yet' and '<= 0' in r['summary']
    # gap positive but not growing (0.01 < 0.02)
    r = diagnose(_rows(**dict(LEARNING, pos=lambda t: 0.85, neg=lambda t: 0.8 - 0.013 * t)))
    assert r['verdict'] == 'not learning yet' and 'growth' in r['summary']
    # the queue never fills
    rows = _rows(**LEARNING)
    for r_ in rows:
        r_['health_queue_fill'] = 0.5
    r = diagnose(rows)
    assert r['verdict'] == 'not learning yet' and 'queue not filled' in r['summary']
    # the queue fills only in the last 3 rows (< min_rows = 4)
    r = diagnose(_rows(**LEARNING, fill_at=38 / 39))
    assert r['verdict'] == 'not learning yet' and 'need 4' in r['summary']


def test_rule_loss_windows_start_after_the_fill():
    # the loss rises while the queue fills, then falls: learning, and the
    # first window is the first post-fill one
    loss = lambda t: 1.5 + 3 * t if t < 0.5 else 3.0 - 0.6 * (t - 0.5)  # noqa: E731
    r = diagnose(_rows(**dict(LEARNING, loss=loss), fill_at=0.5))
    assert r['verdict'] == 'learning', r['summary']
    assert r['numbers']['fill_iter'] == 42  # row 20 of 40 (t = 20/39 >= 0.5)
    assert r['numbers']['loss_first'] == pytest.approx(
        sum(loss(i / 39) for i in range(20, 25)) / 5)
    # counted from the first row instead, the same loss would not fall
    assert diagnose(_rows(**dict(LEARNING, loss=loss), fill_at=0))['verdict'] \
        == 'not learning yet'


@pytest.mark.parametrize('std, pos, neg, verdict', [
    (0.14, 0.8, 0.7, 'collapsing'),    # std below 0.15
    (0.16, 0.8, 0.7, 'learning'),      # just above
    (0.5, 0.96, 0.96, 'collapsing'),   # both cosines above 0.95
    (0.5, 0.96, 0.94, 'learning'),     # one above: not a collapse
])
def test_rule_collapse_thresholds_on_the_last_window(std, pos, neg, verdict):
    # the collapse is only read in the last 25% (rows 30-39, t >= 30/39):
    # a std of 0.01 before then does not matter
    def late(t, before, after):
        return after if t >= 0.75 else before
    rows = _rows(**dict(LEARNING, std=lambda t: late(t, 0.01, std),
                        pos=lambda t: late(t, pos - 0.1, pos),
                        neg=lambda t: late(t, neg + 0.1, neg)))
    r = diagnose(rows)
    assert r['verdict'] == verdict, r['summary']
    assert r['numbers']['last_window_iters'] == [62, 80]
    assert r['numbers']['last_emb_std'] == pytest.approx(std)
    assert r['numbers']['last_pos_cos'] == pytest.approx(pos)


def test_rule_uses_single_infonce_for_densecl_and_checks_inputs():
    # DenseCL: the total loss jumps with the lambda warm-up; the single
    # InfoNCE is what is compared
    rows = _rows(**dict(LEARNING, loss=lambda t: 1.0 + 2 * t),
                 extra=lambda t: dict(health_single_infonce=2.2 - 0.3 * t))
    r = diagnose(rows)
    assert r['verdict'] == 'learning' and r['numbers']['loss_key'] == 'health_single_infonce'
    with pytest.raises(ValueError, match='no health_.*model.health_interval'):
        diagnose([dict(iter=1, loss=2.0)], source='x/scalars.json')
    with pytest.raises(ValueError, match='window'):
        Rules(window=0.9)
    assert math.isclose(Rules().std_collapse, 0.15)
