# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Watch DenseCL's dense correspondences improve during training."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.checks import check_int


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
      draws the mutual best matches above ``threshold`` between two fixed
      views of ``image`` (the train dataset's pipeline with seed ``seed``,
      ``tools/analysis/visualize_correspondence.py``'s figure) and sends it to
      the runner's visualizer as image ``correspondence``, with the argmax
      accuracy of that pair as scalar ``corr_acc_fixed``. Only rank 0 draws.

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
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'log_correspondence'):
            raise TypeError(f'CorrespondenceHook needs a model with a '
                            f'`log_correspondence` switch (DenseCL), got '
                            f'{type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        """Remember whether the model logs on every iteration by itself."""
        self._always = bool(self._model(runner).log_correspondence)
        if self.image is not None:
            import os.path as osp
            if not osp.isfile(self.image):
                raise FileNotFoundError(f'CorrespondenceHook: image '
                                        f'{self.image!r} does not exist')

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
        rgb, acc = self.draw(runner)
        step = runner.iter + 1
        runner.visualizer.add_image('correspondence', rgb, step=step)
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
    def draw(self, runner):
        """The matches figure of the fixed views and their argmax accuracy.

        Returns:
            tuple[np.ndarray, float]: RGB uint8 figure and accuracy (NaN when
            the views do not overlap).
        """
        from densecl_plugin.apis.inference import match_image_views
        from densecl_plugin.visualization import draw_matches, to_rgb_image

        # eval mode inside: BN running statistics, one image is a batch of 1
        packed, matches, (q_geom, k_geom) = match_image_views(
            self._model(runner), self._pipeline(runner), self.image,
            self.seed)
        q_img, k_img = (to_rgb_image(v) for v in packed['inputs'][:2])
        rgb = draw_matches(q_img, k_img, matches, q_geom, k_geom,
                           self.threshold,
                           title=f'iter {runner.iter + 1}: mutual matches '
                           f'with sim > {self.threshold:g} (red: wrong by '
                           'geometry)')
        return rgb, float(matches.accuracy())
