# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The demo's table (markdown + JSON) and loss-curve plot."""
import json
import math
import random

import pytest

from densecl_lab.demo.report import (COLUMNS, INITS, format_markdown,
                                     infonce_curves, moving_average,
                                     plot_loss_curves, table_rows,
                                     write_report)


def _rows():
    return table_rows(
        pretrain=dict(mocov2=dict(train_time=61.2),
                      densecl=dict(train_time=70.7)),
        detection=dict(random={'pascal_voc/AP50': 0.1234,
                               'pascal_voc/mAP': 0.05},
                       mocov2={'pascal_voc/AP50': 0.2, 'pascal_voc/mAP': 0.1},
                       densecl={'pascal_voc/AP50': 0.3,
                                'pascal_voc/mAP': 0.15}),
        segmentation=dict(random=dict(mIoU=40.0), mocov2=dict(mIoU=50.5),
                          densecl=dict(mIoU=61.25)),
        correspondence=dict(random=dict(accuracy=0.2),
                            mocov2=dict(accuracy=0.3),
                            densecl=dict(accuracy=0.45)))


def test_rows_are_in_percent_and_in_order():
    rows = _rows()
    assert [r['init'] for r in rows] == list(INITS)
    random_init, moco, dense = rows
    assert random_init['pretrain_time_s'] is None
    assert moco['pretrain_time_s'] == 61.2
    assert random_init['det_AP50'] == pytest.approx(12.34)
    assert dense['det_mAP'] == pytest.approx(15.0)
    assert dense['seg_mIoU'] == 61.25  # mmseg reports percent already
    assert moco['corr_acc'] == pytest.approx(30.0)


def test_missing_metrics_are_dashes_not_zeros():
    rows = table_rows({}, {}, {}, {})
    text = format_markdown(rows)
    body = text.strip().splitlines()[2:]
    assert len(body) == 3
    for line in body:
        assert line.count('| - ') == len(COLUMNS)


def test_markdown_table_shape_and_values():
    text = format_markdown(_rows(), notes=['seed 0', 'quick'])
    lines = text.strip().splitlines()
    assert lines[0].count('|') == len(COLUMNS) + 2
    assert lines[1].startswith('|---|')
    assert lines[2] == '| random init | - | 12.3 | 5.0 | 40.0 | 20.0 |'
    assert lines[4] == '| DenseCL | 71 | 30.0 | 15.0 | 61.2 | 45.0 |'
    assert lines[-2:] == ['- seed 0', '- quick']


def test_report_files(tmp_path):
    rows = _rows()
    paths = write_report(str(tmp_path), rows, ['n'], dict(seed=0))
    data = json.loads(open(paths['json']).read())
    assert data['rows'] == rows and data['notes'] == ['n']
    assert data['seed'] == 0
    assert open(paths['markdown']).read().startswith('# DenseCL demo')
    rows[0]['seg_mIoU'] = float('nan')  # JSON has no NaN: refuse, loudly
    with pytest.raises(ValueError):
        write_report(str(tmp_path), rows, [], {}, stem='bad')


def test_moving_average_matches_a_plain_loop():
    rng = random.Random(0)
    values = [rng.uniform(-1, 1) for _ in range(37)]
    for window in (1, 2, 5, 40):
        expected = []
        for i in range(len(values)):
            part = values[max(0, i - window + 1):i + 1]
            expected.append(sum(part) / len(part))
        assert moving_average(values, window) == pytest.approx(expected)
    with pytest.raises(ValueError):
        moving_average(values, 0)


def test_infonce_curves_divide_the_weights_out():
    rng = random.Random(1)
    records, ce = [], {}
    for it in range(1, 21):
        lam = 0.0 if it <= 5 else 0.5  # DenseCLHook: dense loss from 6 on
        ce_single, ce_dense = rng.uniform(3, 6), rng.uniform(0.5, 3)
        ce[it] = (ce_single, ce_dense)
        records.append(dict(iter=it, loss=(1 - lam) * ce_single +
                            lam * ce_dense, loss_single=(1 - lam) * ce_single,
                            loss_dense=lam * ce_dense, **{'lambda': lam}))
    curves = infonce_curves('DenseCL', records)
    assert list(curves) == ['DenseCL: global InfoNCE', 'DenseCL: dense InfoNCE']
    single = dict(curves['DenseCL: global InfoNCE'])
    dense = dict(curves['DenseCL: dense InfoNCE'])
    assert sorted(single) == list(range(1, 21))
    assert sorted(dense) == list(range(6, 21))  # undefined while lambda = 0
    for it, (ce_single, ce_dense) in ce.items():
        assert single[it] == pytest.approx(ce_single)
        if it > 5:
            assert dense[it] == pytest.approx(ce_dense)
    moco = infonce_curves('MoCo v2', [dict(iter=1, loss=5.5),
                                      dict(iter=2, loss=5.0)])
    assert moco == {'MoCo v2: InfoNCE': [(1, 5.5), (2, 5.0)]}


def test_loss_curve_png(tmp_path):
    curves = {
        'MoCo v2: InfoNCE': [(i, 5 - 0.01 * i) for i in range(1, 30)],
        'DenseCL: dense InfoNCE': [(i, 3 - 0.02 * i) for i in range(5, 30)],
        'empty': [],
    }
    path = plot_loss_curves(curves, str(tmp_path / 'sub' / 'curves.png'),
                            chance=math.log(257))
    with open(path, 'rb') as f:
        header = f.read(8)
    assert header == b'\x89PNG\r\n\x1a\n'
    from PIL import Image
    w, h = Image.open(path).size
    assert w > 400 and h > 200
