# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Tell a momentum-contrast model on which iterations its health is due."""
from mmengine.hooks import Hook

from densecl_plugin.registry import HOOKS
from .model_contract import contrast_model


@HOOKS.register_module()
class HealthHook(Hook):
    """Set the model's ``health_due`` before every training iteration.

    The model computes its health metrics (``health_*``, see
    ``model.health_interval`` and ``docs/pretraining_health.md``) on the
    iterations ``i`` with ``(i + 1) % health_interval == 0``, ``i`` being
    ``runner.iter``, so a resumed run keeps the schedule of the run it
    continues, and the iterations that ``LoggerHook`` logs (its interval a
    multiple of ``health_interval``) carry them. After the iteration
    ``health_due`` goes back to None (the model's own step count). Models
    other than DenseCL / MoCo v2 are left alone.
    """

    priority = 'NORMAL'

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Set ``health_due`` for the coming iteration."""
        model = contrast_model(runner)
        if model is not None:
            interval = model.health_interval
            model.health_due = bool(interval) and (
                runner.iter + 1) % interval == 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Hand the schedule back to the model."""
        model = contrast_model(runner)
        if model is not None:
            model.health_due = None
