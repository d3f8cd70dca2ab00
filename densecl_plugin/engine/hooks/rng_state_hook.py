# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Every rank's torch random generators in the checkpoint, back on resume."""
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object, get_dist_info, is_distributed
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from densecl_plugin.registry import HOOKS

#: the checkpoint key
KEY = 'torch_rng_states'


def torch_rng_state() -> dict:
    """This process's torch generators: CPU, and CUDA's where present."""
    state = {'cpu': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_torch_rng_state(state: dict) -> None:
    """Set what :func:`torch_rng_state` returned (tensors on any device)."""
    torch.set_rng_state(state['cpu'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's torch generator states; restore them on resume.

    MMEngine's resume restores weights, optimizer, schedulers and the
    iteration, and replays the data loader up to it (so the data pipeline's
    ``numpy``/``random`` draws come back by themselves), but not the torch
    generators that the model draws from while training: the shuffle-BN
    permutation of every DDP step (``torch.randperm``) then differs after a
    resume, and so do the losses. Here the torch generator states of all
    ranks are gathered into the checkpoint (``torch_rng_states``, one entry
    per rank) and, when the run resumes (not when ``load_from`` only loads
    weights) with the same number of processes, each rank takes its own
    back. :func:`densecl_plugin.apis.train` adds this hook to every run.

    A data pipeline that draws from torch's generator is not made exact by
    this (the data loader's replay runs after the restore).
    """

    # before CheckpointHook (VERY_LOW), after every hook that draws
    priority = 'LOW'

    def __init__(self) -> None:
        self._states: Optional[List[dict]] = None

    def _gather(self) -> None:
        state = torch_rng_state()
        self._states = (all_gather_object(state) if is_distributed() else
                        [state])

    def _saves_now(self, runner, by_epoch: bool) -> bool:
        """Whether a CheckpointHook saves at the end of this iteration
        (epoch); its own rule, so every rank answers alike."""
        for h in runner.hooks:
            if not isinstance(h, CheckpointHook) or h.by_epoch != by_epoch:
                continue
            begin = getattr(h, 'save_begin', 0)
            if by_epoch:
                every = self.every_n_epochs(runner, h.interval, begin)
                last = self.is_last_train_epoch(runner)
            else:
                every = self.every_n_train_iters(runner, h.interval, begin)
                last = self.is_last_train_iter(runner)
            if every or (h.save_last and last):
                return True
        return False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Gather every rank's states where a checkpoint follows (a
        collective: runner.save_checkpoint runs on rank 0 only)."""
        if self._saves_now(runner, by_epoch=False):
            self._gather()

    def after_train_epoch(self, runner) -> None:
        """As :meth:`after_train_iter`, for checkpoints by epoch."""
        if self._saves_now(runner, by_epoch=True):
            self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Put the gathered states (this process's alone where none were
        gathered, as in one process) into the checkpoint."""
        if self._states is None:
            self._gather()
        checkpoint[KEY] = self._states
        self._states = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On resume, give each rank its saved states."""
        states = checkpoint.get(KEY)
        if not states or not getattr(runner, '_resume', False):
            return
        rank, world_size = get_dist_info()
        if len(states) != world_size:
            print_log(f'RNGStateHook: the checkpoint holds the generator '
                      f'states of {len(states)} process(es), this run has '
                      f'{world_size}: not restored (the losses after the '
                      f'resume will differ from an uninterrupted run\'s)',
                      logger='current', level=30)
            return
        set_torch_rng_state(states[rank])
