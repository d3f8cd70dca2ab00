# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Watch DenseCL's dense correspondences improve during training."""
import os.path as osp
from typing import Any, Dict, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.structures import BaseDataElement
from mmengine.visualization import Visualizer

from densecl_plugin.models.utils.correspondence import (DenseMatches,
                                                        ViewGeometry,
                                                        match_packed_views)
from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.checks import check_int
from densecl_plugin.utils.seeding import seeded
from .model_contract import dense_model


@HOOKS.register_module()
class CorrespondenceHook(Hook):
    """Log how often DenseCL's dense matches agree with the crop geometry.

    - Every ``interval`` training iterations the model's loss also returns
      ``corr_acc`` (the hook sets ``model.log_correspondence`` for that
      iteration): over the query cells that the key view also sees, the
      fraction whose matched key cell lies within ``tolerance`` cells
      (Chebyshev) of the key cell covering the same image point.
      ``RuntimeInfoHook`` puts it in the message hub, so ``LoggerHook`` writes
      it (averaged over the log window) to the log and to every configured
      vis backend (``TensorboardVisBackend``, ...). A model built with
      ``log_correspondence=True`` logs it on every iteration regardless.
    - Every ``draw_interval`` iterations, when ``image`` is given, the hook
      matches the C5 cells of two fixed views of ``image`` (the train
      dataset's pipeline with seed ``seed``;
      :func:`~densecl_plugin.models.utils.correspondence.match_packed_views`)
      and hands them to the runner's visualizer, MMEngine's way:
      ``runner.visualizer.add_datasample('correspondence', views,
      data_sample)`` with a data sample holding ``matches`` and the
      metainfo ``views`` (each view's geometry), ``threshold`` and
      ``title``. ``CorrespondenceVisualizer`` (``visualizer=dict(type=
      'CorrespondenceVisualizer', vis_backends=[...])``) draws the mutual
      best matches above ``threshold``
      (``tools/analysis/visualize_correspondence.py``'s figure) as image
      ``correspondence``; the hook logs the argmax accuracy of that pair as
      scalar ``corr_acc_fixed``. Only rank 0 draws.

    Args:
        interval (int): Iterations between two ``corr_acc`` values.
            Defaults to 50.
        image (str, optional): An image to draw the matches of. Defaults to
            None (no figure).
        draw_interval (int, optional): Iterations between two figures.
            Defaults to None (``interval``).
        threshold (float): Similarity above which mutual best matches are
            drawn. Defaults to 0.9.
        seed (int): Seed of the fixed views. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 50, image: Optional[str] = None,
                 draw_interval: Optional[int] = None, threshold: float = 0.9,
                 seed: int = 0) -> None:
        for name, value in (('interval', interval),
                            ('draw_interval', draw_interval)):
            if value is not None:
                check_int('CorrespondenceHook', name, value, 1)
        self.interval = interval
        self.image = image
        self.draw_interval = draw_interval or interval
        self.threshold = threshold
        self.seed = seed
        self._always: Optional[bool] = None

    @staticmethod
    def _model(runner):
        return dense_model(runner, 'CorrespondenceHook', 'log_correspondence')

    def before_train(self, runner) -> None:
        """Remember whether the model logs on every iteration by itself;
        check the image and that the visualizer draws matches."""
        self._always = bool(self._model(runner).log_correspondence)
        if self.image is None:
            return
        if not osp.isfile(self.image):
            raise FileNotFoundError(f'CorrespondenceHook: image '
                                    f'{self.image!r} does not exist')
        visualizer = runner.visualizer
        if type(visualizer).add_datasample is Visualizer.add_datasample:
            raise TypeError(
                f'CorrespondenceHook: image={self.image!r} needs a visualizer '
                f'that draws the matches, got {type(visualizer).__name__} '
                f"(which draws nothing); set visualizer=dict(type="
                f"'CorrespondenceVisualizer', vis_backends=[...])")

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Switch ``corr_acc`` on for every ``interval``-th iteration."""
        model = self._model(runner)
        if self._always is None:
            self._always = bool(model.log_correspondence)
        model.log_correspondence = self._always or self.every_n_train_iters(
            runner, self.interval)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Draw the fixed pair every ``draw_interval`` iterations (rank 0)."""
        if (self.image is None or runner.rank != 0
                or not self.every_n_train_iters(runner, self.draw_interval)):
            return
        packed, matches, views = self.fixed_pair(runner)
        step = runner.iter + 1
        sample = BaseDataElement(metainfo=dict(
            views=views, threshold=self.threshold,
            title=f'iter {step}: mutual matches with sim > '
            f'{self.threshold:g} (red: wrong by geometry)'))
        sample.set_field(matches, 'matches')
        runner.visualizer.add_datasample('correspondence',
                                         packed['inputs'][:2], sample,
                                         step=step)
        acc = float(matches.accuracy())
        if acc == acc:  # not NaN: the fixed views overlap
            runner.visualizer.add_scalar('corr_acc_fixed', acc, step=step)

    def _pipeline(self, runner):
        """The train dataset's built pipeline (through dataset wrappers)."""
        dataset = runner.train_dataloader.dataset
        while not hasattr(dataset, 'pipeline') and hasattr(dataset, 'dataset'):
            dataset = dataset.dataset
        if not callable(getattr(dataset, 'pipeline', None)):
            raise TypeError(f'CorrespondenceHook: the train dataset '
                            f'{type(dataset).__name__} has no pipeline to '
                            f'make the views of {self.image!r} with')
        return dataset.pipeline

    @torch.no_grad()
    def fixed_pair(self, runner) -> Tuple[Dict[str, Any], DenseMatches,
                                          Tuple[ViewGeometry, ViewGeometry]]:
        """The fixed views of ``image`` and their matches.

        The views come from the train pipeline seeded with ``seed`` (the
        training's random streams are restored after); the model matches
        them in eval mode (one image is a batch of one for BatchNorm) and
        is returned to its mode.

        Returns:
            tuple: The packed views, their :class:`DenseMatches` and each
            view's ``([x1, y1, x2, y2], flip)``.
        """
        with seeded(self.seed):
            packed = self._pipeline(runner)(dict(img_path=self.image))
        matches, views = match_packed_views(self._model(runner), packed)
        return packed, matches, views
