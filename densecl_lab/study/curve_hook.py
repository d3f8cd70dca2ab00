# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``StudyCurveHook``: held-out correspondence accuracy during pre-training.

The same measure as the study's final evaluation
(:func:`~densecl_lab.demo.correspondence_eval.held_out_correspondence`),
taken before the first iteration and every ``interval`` iterations, for any
model with a backbone (MoCo v2 and DenseCL alike). When the model also
returns ``corr_acc`` from its loss (DenseCL under
:class:`~densecl_plugin.engine.hooks.CorrespondenceHook`), those training-
batch values are recorded too.
"""
import json
import os
import os.path as osp
import time
from typing import Any, Dict, List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.checks import check_int


@HOOKS.register_module()
class StudyCurveHook(Hook):
    """Record a correspondence-accuracy curve over pre-training iterations.

    Args:
        images (Sequence[str]): held-out images.
        out_file (str): where the curve is written (JSON) after training.
        interval (int): iterations between two held-out evaluations.
            Defaults to 250.
        seeds (Sequence[int]): view-pair seeds per image. Defaults to
            ``(1000, )``.
        view_size (int): view side of the evaluation. Defaults to 192.
    """

    priority = 'LOW'

    def __init__(self, images: Sequence[str], out_file: str,
                 interval: int = 250, seeds: Sequence[int] = (1000, ),
                 view_size: int = 192) -> None:
        check_int('StudyCurveHook', 'interval', interval, 1)
        if not images or not seeds:
            raise ValueError('StudyCurveHook needs images and seeds')
        self.images = list(images)
        self.out_file = out_file
        self.interval = interval
        self.seeds = list(seeds)
        self.view_size = view_size
        self.held_out: List[Dict[str, Any]] = []
        self.train_corr: List[Dict[str, float]] = []
        self.eval_time = 0.0
        self.train_eval_time = 0.0  # the part inside training iterations
        self._cfg = None

    def _evaluate(self, runner, step: int) -> float:
        from mmengine.config import Config

        from densecl_lab.demo.correspondence_eval import \
            held_out_correspondence
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if self._cfg is None:
            self._cfg = Config(runner.cfg.to_dict()) if not isinstance(
                runner.cfg, Config) else runner.cfg
        t0 = time.perf_counter()
        was_training = model.training
        try:
            result = held_out_correspondence(model, self._cfg, self.images,
                                             self.seeds, self.view_size)
        finally:
            model.train(was_training)
        seconds = time.perf_counter() - t0
        self.eval_time += seconds
        self.held_out.append(dict(iter=step, accuracy=result['accuracy'],
                                  same_cell_accuracy=result[
                                      'same_cell_accuracy'],
                                  num_pairs=result['num_pairs'],
                                  grid=result['grid']))
        return seconds

    def before_train(self, runner) -> None:
        """Evaluate the initial weights (iteration 0)."""
        if runner.iter == 0:
            self._evaluate(runner, 0)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Keep a training ``corr_acc``; evaluate every ``interval``."""
        step = runner.iter + 1
        value = (outputs or {}).get('corr_acc')
        if value is not None:
            self.train_corr.append(dict(iter=step, accuracy=float(value)))
        if step % self.interval == 0 or step == runner.max_iters:
            self.train_eval_time += self._evaluate(runner, step)

    def after_train(self, runner) -> None:
        """Write the curve."""
        os.makedirs(osp.dirname(osp.abspath(self.out_file)), exist_ok=True)
        with open(self.out_file, 'w') as f:
            json.dump(self.record(), f, indent=1)

    def record(self) -> Dict[str, Any]:
        """The curve so far, JSON-able."""
        return dict(held_out=self.held_out, train_corr=self.train_corr,
                    eval_time=self.eval_time,
                    train_eval_time=self.train_eval_time,
                    interval=self.interval,
                    seeds=self.seeds, view_size=self.view_size,
                    num_images=len(self.images))
