# Copyright (c) densecl_plugin contributors. All rights reserved.
"""End to end on CPU: each data layout, built from real annotated data,
trains 2 iterations of the REAL benchmark config (stock mmdet / mmseg,
sizes shrunk by ``make_smoke_config``) from a real DenseCL checkpoint, then
evaluates once and reports the benchmark's metric keys.

The checkpoint's weights are random (BN statistics measured on real photos),
so the detectors train at 1 % of the benchmark lr: at the real lr, two steps
on random weights blow the features up and nothing is detected, which would
hide the evaluation path. Optimisation itself is not under test here.

The VOC12 + aug layout runs the same way, but through
``tools/benchmarks/run_transfer.py`` and ``tools/train.py`` in a subprocess
(``tests/test_tools/test_run_transfer.py``).
"""
import glob
import json
import math
import os.path as osp

import pytest
from mmengine.runner import Runner

from test_downstream.smoke import make_smoke_config

DET = 'configs/benchmarks/mmdetection'
SEG = 'configs/benchmarks/mmsegmentation'
CASES = {  # layout -> (config, metric keys that must appear, size kwargs)
    'voc0712': (f'{DET}/voc0712/faster-rcnn_r50-c4_8xb2-24k_voc0712.py',
                ['pascal_voc/mAP', 'pascal_voc/AP50', 'pascal_voc/AP75'],
                dict(img_size=128, num_rois=16, lr_scale=0.01)),
    'coco': (f'{DET}/coco/mask-rcnn_r50-c4_8xb2-1x_coco.py',
             ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP',
              'coco/segm_mAP_50'],
             dict(img_size=96, num_rois=16, lr_scale=0.01)),
    'cityscapes': (
        f'{SEG}/cityscapes/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py',
        ['mIoU', 'aAcc'], dict(img_size=64, crop_size=48)),
    'ade20k': (f'{SEG}/ade20k/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
               ['mIoU', 'aAcc'], dict(img_size=64, crop_size=48)),
}


@pytest.mark.slow
@pytest.mark.parametrize('layout', list(CASES))
def test_two_iterations_and_one_evaluation(layout, tiny_datasets,
                                           densecl_r50_checkpoint, repo_root,
                                           tmp_path):
    config, keys, sizes = CASES[layout]
    data = tiny_datasets(layout)
    classes = getattr(data, 'classes', None)
    work_dir = str(tmp_path / layout)
    cfg = make_smoke_config(osp.join(repo_root, config),
                            densecl_r50_checkpoint, data.data_root, work_dir,
                            classes=classes, max_iters=2, batch_size=2,
                            **sizes)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    scalars = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    with open(scalars[0]) as f:
        records = [json.loads(line) for line in f]
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    metrics = [r for r in records if keys[0] in r]
    assert len(metrics) == 1, records
    for key in keys:
        assert 0 <= metrics[0][key] <= 100, (key, metrics[0])
