# Copyright (c) densecl_plugin contributors. All rights reserved.
"""CorrespondenceHook in a real Runner on real photos: ``corr_acc`` reaches
the log and TensorBoard, and the fixed-pair figure, drawn by the runner's
``CorrespondenceVisualizer``, reaches the vis backends."""
import glob
import os.path as osp

import pytest
import torch

from densecl_plugin.engine.hooks import CorrespondenceHook
from densecl_plugin.models.algorithms.base import DEFAULT_DATA_PREPROCESSOR
from tiny_models import tiny_model_cfg, tiny_runner

#: a ResNet-18 of width 8 (with mmdet's zero-init residuals, as before the
#: tiny models were shared) that normalises the real uint8 views itself
TINY = dict(base_channels=8, hid_channels=16, feat_dim=8, queue_len=8,
            backbone=dict(zero_init_residual=True),
            data_preprocessor=DEFAULT_DATA_PREPROCESSOR)
TINY_DENSECL = tiny_model_cfg('DenseCL', loss_lambda=0.5, **TINY)


def _runner(work_dir, image_dir, hook, max_iters=4, model=None, log_level='WARNING',
            visualizer='CorrespondenceVisualizer'):
    return tiny_runner(
        work_dir, model or dict(TINY_DENSECL), image_dir=image_dir,
        view_size=96, batch_size=2, max_iters=max_iters, custom_hooks=[hook],
        # named after the work dir: MMEngine reuses a visualizer of the same
        # name (the experiment's time stamp) whatever its type
        visualizer=dict(type=visualizer, name=work_dir, vis_backends=[
            dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]),
        log_level=log_level)


def _tb_scalars(work_dir):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    files = glob.glob(osp.join(work_dir, '**', 'events.out.tfevents*'), recursive=True)
    assert files, 'no TensorBoard event file'
    acc = EventAccumulator(osp.dirname(files[0]))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)]
            for tag in acc.Tags()['scalars']}


def test_corr_acc_reaches_log_and_tensorboard(real_image_dir, real_image_paths, tmp_path):
    work_dir = str(tmp_path)
    hook = dict(type='CorrespondenceHook', interval=2, image=real_image_paths[0],
                draw_interval=4, threshold=0.5)
    runner = _runner(work_dir, real_image_dir, hook, log_level='INFO')
    runner.train()
    # the model returned corr_acc on iterations 2 and 4 only
    history = runner.message_hub.get_scalar('train/corr_acc')
    values, counts = history.data
    assert len(values) == 2 and all(0. <= v <= 1. for v in values)
    # the logger wrote it to TensorBoard at the iterations where it existed
    scalars = _tb_scalars(work_dir)
    assert [s for s, _ in scalars['corr_acc']][:1] == [2]
    assert scalars['corr_acc'][0][1] == pytest.approx(values[0])
    assert 'loss' in scalars and 'loss_dense' in scalars
    # the fixed pair: its accuracy and figure at iteration 4
    assert [s for s, _ in scalars['corr_acc_fixed']] == [4]
    pngs = glob.glob(osp.join(work_dir, '**', 'vis_image', 'correspondence_4.png'),
                     recursive=True)
    assert len(pngs) == 1
    # and to the text log and the json scalars of the Runner
    logs = glob.glob(osp.join(work_dir, '**', '*.log'), recursive=True)
    assert sum(open(f).read().count('corr_acc: ') for f in logs) >= 2
    jsons = glob.glob(osp.join(work_dir, '**', 'scalars.json'), recursive=True)
    assert sum(open(f).read().count('"corr_acc"') for f in jsons) >= 2


def test_hook_checks_its_inputs(real_image_dir, tmp_path):
    with pytest.raises(ValueError, match='interval must be an int >= 1'):
        CorrespondenceHook(interval=0)
    with pytest.raises(ValueError, match='draw_interval'):
        CorrespondenceHook(draw_interval=True)
    runner = _runner(str(tmp_path / 'a'), real_image_dir,
                     dict(type='CorrespondenceHook', image='no_such.jpg'), max_iters=1)
    with pytest.raises(FileNotFoundError, match='no_such.jpg'):
        runner.train()
    mocov2 = tiny_model_cfg('MoCoV2', **TINY)
    runner = _runner(str(tmp_path / 'b'), real_image_dir,
                     dict(type='CorrespondenceHook'), max_iters=1, model=mocov2)
    with pytest.raises(TypeError, match='log_correspondence.*MoCoV2'):
        runner.train()


def test_a_visualizer_that_draws_nothing_is_refused(real_image_dir, real_image_paths,
                                                     tmp_path):
    hook = dict(type='CorrespondenceHook', image=real_image_paths[0])
    runner = _runner(str(tmp_path), real_image_dir, hook, max_iters=1,
                     visualizer='Visualizer')
    with pytest.raises(TypeError, match="type='CorrespondenceVisualizer'"):
        runner.train()


def test_fixed_pair_leaves_training_randomness_and_mode_alone(
        real_image_dir, real_image_paths, tmp_path):
    """The fixed pair is apis.inference.match_image_views' (same pipeline and
    seed), and drawing it touches neither the RNG nor the model's mode."""
    from densecl_plugin.apis.inference import match_image_views
    runner = _runner(str(tmp_path), real_image_dir,
                     dict(type='CorrespondenceHook', image=real_image_paths[1], seed=3),
                     max_iters=1)
    hook = [h for h in runner.hooks if isinstance(h, CorrespondenceHook)][0]
    runner.model.train()
    runner.train_loop  # built (as in training) before the RNG state is read
    state = torch.get_rng_state()
    packed, matches, views = hook.fixed_pair(runner)
    assert runner.model.training and torch.equal(torch.get_rng_state(), state)
    acc = float(matches.accuracy())
    assert acc != acc or 0 <= acc <= 1
    pipeline = runner.train_dataloader.dataset.pipeline
    ref = match_image_views(runner.model, pipeline, real_image_paths[1], seed=3)
    assert views == ref.views
    for a, b in zip(packed['inputs'], ref.packed['inputs']):
        assert torch.equal(a, b)
    assert torch.equal(matches.ind, ref.matches.ind)
    assert torch.equal(matches.sim, ref.matches.sim)
