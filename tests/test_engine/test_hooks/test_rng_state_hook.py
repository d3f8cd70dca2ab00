# Copyright (c) densecl_plugin contributors. All rights reserved.
"""RNGStateHook: the torch generator of the save comes back on resume, only
on resume, and only with the same number of processes. Under real launchers
(2 ranks, a restart) and against an uninterrupted run:
tests/test_apis/test_launchers.py."""
from types import SimpleNamespace

import torch
from mmengine.hooks import CheckpointHook

from densecl_plugin.engine.hooks.rng_state_hook import KEY, RNGStateHook


def _runner(resume, iters=0, max_iters=10, interval=2):
    return SimpleNamespace(
        _resume=resume, iter=iters, max_iters=max_iters, epoch=0,
        hooks=[CheckpointHook(interval=interval, by_epoch=False)])


def test_saved_state_comes_back_on_resume_only():
    hook = RNGStateHook()
    torch.manual_seed(3)
    ckpt = {}
    hook.before_save_checkpoint(_runner(True), ckpt)
    want = torch.rand(5)  # what the uninterrupted run draws next
    assert len(ckpt[KEY]) == 1
    torch.manual_seed(99)  # a new process
    hook.after_load_checkpoint(_runner(False), ckpt)  # load_from: no
    assert not torch.equal(torch.rand(5), want)
    torch.manual_seed(99)
    hook.after_load_checkpoint(_runner(True), ckpt)  # resume
    assert torch.equal(torch.rand(5), want)


def test_other_world_size_or_old_checkpoint_is_left_alone():
    hook = RNGStateHook()
    state = {'cpu': torch.get_rng_state()}
    torch.manual_seed(5)
    want = torch.rand(3)
    torch.manual_seed(5)
    hook.after_load_checkpoint(_runner(True), {KEY: [state, state]})
    hook.after_load_checkpoint(_runner(True), {})
    assert torch.equal(torch.rand(3), want)


def test_gathers_where_the_checkpoint_hook_saves():
    hook = RNGStateHook()
    hook.after_train_iter(_runner(True, iters=0), 0)  # iteration 1: no save
    assert hook._states is None
    hook.after_train_iter(_runner(True, iters=1), 1)  # iteration 2: saves
    assert hook._states is not None and len(hook._states) == 1
    ckpt = {}
    hook.before_save_checkpoint(_runner(True), ckpt)
    assert hook._states is None and len(ckpt[KEY]) == 1
    # the last iteration saves too (save_last)
    hook.after_train_iter(_runner(True, iters=8, max_iters=9), 0)
    assert hook._states is not None
