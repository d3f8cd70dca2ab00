# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Warm-up of DenseCL's dense-loss weight."""
from typing import Optional

from mmengine.hooks import Hook

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.checks import check_int
from .model_contract import dense_model


@HOOKS.register_module()
class DenseCLHook(Hook):
    """Train with ``loss_lambda = 0`` (single loss only) for ``start_iters``.

    The authors' optional ``DenseCLWarmupHook``: before iteration
    ``start_iters`` the dense loss is switched off, from then on the
    configured ``loss_lambda`` applies (the author suggests
    ``start_iters=10000`` for ImageNet in WXinlong/DenseCL#16).

    The weight is set in ``before_train_iter`` from ``runner.iter``, so it is
    right on every iteration, including the first one after a resume. The
    configured value is read once, when training starts, and kept in the
    hook (``loss_lambda`` of the model may be 0 at any later time); pass
    ``loss_lambda`` to fix it explicitly instead.

    Args:
        start_iters (int): The first iteration (0-based, ``runner.iter``)
            that uses the configured weight. Defaults to 1000.
        loss_lambda (float, optional): The weight to use from
            ``start_iters`` on. Defaults to None: the model's ``loss_lambda``
            when training starts.
    """

    priority = 'NORMAL'

    def __init__(self, start_iters: int = 1000,
                 loss_lambda: Optional[float] = None) -> None:
        check_int('DenseCLHook', 'start_iters', start_iters, 0)
        if loss_lambda is not None and not 0 <= loss_lambda <= 1:
            raise ValueError(f'DenseCLHook: loss_lambda must be in [0, 1] or '
                             f'None, got {loss_lambda!r}')
        self.start_iters = start_iters
        self.loss_lambda = loss_lambda

    @staticmethod
    def _model(runner):
        return dense_model(runner, 'DenseCLHook', 'loss_lambda')

    def before_train(self, runner) -> None:
        """Remember the configured weight (once per hook)."""
        if self.loss_lambda is None:
            self.loss_lambda = float(self._model(runner).loss_lambda)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Set the weight of the coming iteration from ``runner.iter``."""
        model = self._model(runner)
        if self.loss_lambda is None:  # training started without before_train
            self.loss_lambda = float(model.loss_lambda)
        model.loss_lambda = (0. if runner.iter < self.start_iters else
                             self.loss_lambda)
