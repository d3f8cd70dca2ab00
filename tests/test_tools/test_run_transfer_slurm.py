# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``run_transfer.py --launcher slurm`` on a real one-node Slurm
(``tests/slurm_cluster.py``) with the demo's two small downstream configs
(deepforest VOC detection, stardist nuclei segmentation) on real tiles:
each benchmark is its own batch job asking for the one GPU it uses; the
command returns at once; a cancelled job is submitted again by the same
command and resumes; ``--status`` and ``--collect-only``."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.slow

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RUN_TRANSFER = osp.join(REPO, 'tools', 'benchmarks', 'run_transfer.py')
DET = 'configs/demo/faster-rcnn_r18-fpn_1xb4-60iters_deepforest-voc.py'
SEG = 'configs/demo/fcn_r18-d8_1xb8-120iters_stardist-nuclei.py'
ITERS = 4


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """A folder holding ``data/demo/{VOCdevkit,nuclei}`` (the demo configs'
    relative data roots): real deepforest and stardist tiles, small."""
    from densecl_lab.data_prep.binary_segmentation import \
        build_binary_segmentation
    from densecl_lab.data_prep.voc_detection import build_voc_detection
    cwd = tmp_path_factory.mktemp('transfer_cwd')
    build_voc_detection(str(cwd / 'data' / 'demo'), out_size=96,
                        max_tiles=12)
    build_binary_segmentation(str(cwd / 'data' / 'demo' / 'nuclei'),
                              out_size=64)
    return cwd


@pytest.fixture(scope='module')
def r18_backbone(tmp_path_factory):
    """A ResNet-18 backbone checkpoint (``backbone.*`` keys)."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18)
    path = str(tmp_path_factory.mktemp('ckpt') / 'r18_backbone.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               net.state_dict().items()}}, path)
    return path


def _state(cluster, job):
    out = cluster.run(['scontrol', 'show', 'job', '-o', job]).stdout
    return dict(re.findall(r'(\w+)=(\S*)', out))


def _wait(cluster, job, states, timeout=400):
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = _state(cluster, job).get('JobState')
        if state in states:
            return state
        time.sleep(0.3)
    raise AssertionError(f'job {job}: {state}, not in {states}')


def test_transfer_as_slurm_jobs(demo_data, r18_backbone, slurm_cluster,
                                tmp_path):
    root = str(tmp_path / 'runs')
    env = {**os.environ, **slurm_cluster.env, 'PYTHON': sys.executable,
           'OMP_NUM_THREADS': '1', 'CPUS_PER_TASK': '1'}

    def cli(*args):
        proc = subprocess.run(
            [sys.executable, RUN_TRANSFER, r18_backbone, '--work-dir', root,
             *args], cwd=str(demo_data), env=env, capture_output=True,
            text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    submit = ('--configs', osp.join(REPO, DET), osp.join(REPO, SEG),
              '--launcher', 'slurm', '--partition', 'gpu', '--gpus', '1',
              '--', '--cfg-options', f'train_cfg.max_iters={ITERS}',
              f'train_cfg.val_interval={ITERS}',
              'default_hooks.checkpoint.interval=1',
              # keep iter_1.pth while iter_2.pth is written (in place: the
              # demo configs have no AtomicSaveHook)
              'default_hooks.checkpoint.max_keep_ckpts=-1')
    out = cli(*submit)  # returns at once, the jobs queued or running
    jobs_path = osp.join(root, 'r18_backbone', 'slurm_jobs.json')
    jobs = json.load(open(jobs_path))
    assert sorted(jobs) == ['demo-deepforest-det', 'demo-nuclei-seg']
    for name, rec in jobs.items():
        assert f'submitted job {rec["job_id"]}' in out
        assert open(osp.join(rec['work_dir'], 'slurm_job_id')).read() \
            .strip() == rec['job_id']
        # each job asks for the one GPU it uses
        assert _state(slurm_cluster, rec['job_id'])['TresPerNode'] == \
            'gres:gpu:1'

    # the segmentation job dies once its second checkpoint appears
    # (scancel; MMEngine writes it in place, so it may be cut short, but
    # the first is whole): the same command submits it again, it resumes
    seg = jobs['demo-nuclei-seg']
    deadline = time.time() + 300
    while not osp.exists(osp.join(seg['work_dir'], 'iter_2.pth')):
        assert time.time() < deadline
        assert _state(slurm_cluster, seg['job_id'])['JobState'] in (
            'PENDING', 'RUNNING'), open(osp.join(
                seg['work_dir'], f'slurm-{seg["job_id"]}.out')).read()[-3000:]
        time.sleep(0.02)
    slurm_cluster.run(['scancel', seg['job_id']], check=True)
    assert _wait(slurm_cluster, seg['job_id'], ('CANCELLED', 'COMPLETED')) \
        == 'CANCELLED'
    assert 'CANCELLED' in cli('--status')
    out = cli(*submit)
    jobs = json.load(open(jobs_path))
    det_job = jobs['demo-deepforest-det']['job_id']
    assert f'job {det_job} is' in out and 'left alone' in out
    new = jobs['demo-nuclei-seg']
    assert new['submissions'] == [seg['job_id'], new['job_id']]
    assert 'submitting again (it resumes)' in out

    for job in (det_job, new['job_id']):
        assert _wait(slurm_cluster, job, ('COMPLETED', 'FAILED',
                                          'CANCELLED')) == 'COMPLETED', job
    log = open(osp.join(new['work_dir'], f'slurm-{new["job_id"]}.out')).read()
    assert re.search(r'resumed epoch: \d+, iter: [1-9]', log), log[-3000:]

    status = cli('--status')
    for name in jobs:
        assert re.search(rf'\| {name} \| \d+ \| COMPLETED \| \d \| '
                         rf'iter_{ITERS}\.pth \| yes \|', status), status
    table = cli('--configs', osp.join(REPO, DET), osp.join(REPO, SEG),
                '--collect-only')
    assert re.search(r'\| demo-deepforest-det \| AP50 \| \d+\.\d\d \|', table)
    assert re.search(r'\| demo-nuclei-seg \| mIoU \| \d+\.\d\d \|', table)
    assert osp.isfile(osp.join(root, 'r18_backbone', 'results.md'))
