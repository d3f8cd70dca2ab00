# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Start-of-run warnings for DenseCL / MoCo v2 settings that do not learn."""
import logging
import math
from typing import List, Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.config_search import crop_size
from .densecl_hook import DenseCLHook
from .model_contract import contrast_model

#: MoCo v2 / DenseCL: SGD lr 0.03 for a total batch of 256
LR_PER_256 = 0.03


def own_key_share(K: int, n: int) -> float:
    """Share of queries with an older key of their own image in the queue.

    MMEngine's ``InfiniteSampler(shuffle=True)`` draws a fresh permutation
    of the ``n`` images each pass. An image drawn at position ``p2`` of a
    pass was last drawn at ``p1`` of the previous one, ``n - p1 + p2``
    draws ago, ``p1, p2`` independent uniform: its previous key is still
    among the last ``K`` keys iff ``p2 - p1 <= K - n``. With ``r = K / n``:
    ``r**2 / 2`` for ``r <= 1``, ``1 - (2 - r)**2 / 2`` for ``1 < r < 2``,
    1 beyond. (Checked by simulation in the tests; e.g. 405 images, K=256:
    20 %; K = n: 50 %; K = n / 4: 3 %. The mean number of own keys in the
    queue is ``r`` in every case.)

    Args:
        K (int): the queue length.
        n (int): the number of images.
    """
    r = K / max(n, 1)
    if r <= 1:
        return r * r / 2
    if r < 2:
        return 1 - (2 - r)**2 / 2
    return 1.0


@HOOKS.register_module()
class PretrainingSanityHook(Hook):
    """Warn, when training starts, about settings that keep a run from
    learning; each warning names the config key and a suggested value.

    Nothing is refused. The checks (``before_train``, after the model is
    built and any checkpoint resumed):

    * **small data set**: fewer images than ``min_batches`` total batches
      (the ``InfiniteSampler`` repeats images within a batch or every few
      iterations, so an image's own older keys sit in the queue as its
      negatives);
    * **queue large against the data set**: ``K > n * queue_ratio``. By
      :func:`own_key_share`, at ``K = n / 2`` (the default threshold) 1 in
      8 queries already has an older key of its own image among its
      negatives, and at ``K = n`` half of them; the suggested ``K`` is the
      largest power of two ``<= n / 4`` (about 3 %);
    * **one process without split BN**: in one process shuffle-BN does
      nothing, so query and key share the batch statistics (MoCo's
      "cheating" through BN); the key is ``model.split_bn_groups``;
    * **DenseCL dense grid below** ``min_grid`` (5x5): measured by one
      ``no_grad`` forward of the backbone on a zero image of the
      pipeline's crop size;
    * **DenseCL without DenseCLHook** (the lambda warm-up);
    * **lr far from the linear scaling rule** (SGD, 0.03 per 256 images of
      the total batch): beyond ``lr_factor`` (4) either way. Square-root
      scaling, the other common rule, gives ``sqrt(256 / B)`` times the
      linear lr: 4x at batch 16, our smallest configs; an lr beyond 4x is
      further from the linear rule than even that, and below 1/4 no rule
      gives it.

    Args:
        min_batches (int): warn below this many total batches of images.
            Defaults to 4.
        queue_ratio (float): warn when ``K > n * queue_ratio``. Defaults to
            0.5.
        min_grid (int): warn when DenseCL's dense grid side is below this.
            Defaults to 5.
        lr_factor (float): warn when the lr is off the linear rule by more
            than this factor. Defaults to 4.
    """

    priority = 'LOW'

    def __init__(self, min_batches: int = 4, queue_ratio: float = 0.5,
                 min_grid: int = 5, lr_factor: float = 4.) -> None:
        self.min_batches = min_batches
        self.queue_ratio = queue_ratio
        self.min_grid = min_grid
        self.lr_factor = lr_factor
        self.messages: List[str] = []

    def _warn(self, msg: str) -> None:
        self.messages.append(msg)
        print_log(f'PretrainingSanityHook: {msg}', logger='current',
                  level=logging.WARNING)

    @staticmethod
    def _crop_size(runner) -> Optional[int]:
        cfg = getattr(runner, 'cfg', None)
        return crop_size((cfg or {}).get('train_dataloader', {}))

    @staticmethod
    def _grid(model, size: int) -> Optional[int]:
        backbone = getattr(model, 'backbone', None)
        if backbone is None:
            return None
        try:
            p = next(model.parameters())
            was_training = backbone.training
            backbone.eval()  # keep the BN statistics untouched
            with torch.no_grad():
                out = backbone(torch.zeros(1, 3, size, size, device=p.device,
                                           dtype=p.dtype))
            backbone.train(was_training)
        except Exception:  # noqa: BLE001 (a warning is only advice)
            return None
        out = out[-1] if isinstance(out, (list, tuple)) else out
        return int(min(out.shape[-2:]))

    def before_train(self, runner) -> None:
        """Run the checks once."""
        model = contrast_model(runner)
        if model is None:
            return  # not a momentum-contrast pre-training model
        world = get_world_size()
        dl = runner.train_dataloader
        B = int(dl.batch_size or 1)
        total = B * world
        try:
            n = len(dl.dataset)
        except TypeError:
            n = None
        K = model.queue_len
        name = type(model).__name__

        if n is not None and n < self.min_batches * total:
            every = max(n / total, 1e-9)
            self._warn(
                f'the data set has {n} images for a batch of {B} per '
                f'process x {world} process(es) = {total}: '
                + (f'each batch repeats every image about {total / n:.1f} '
                   f'times' if n < total else
                   f'every image comes back every {every:.1f} iterations')
                + f', so with a queue of K={K} each query meets about '
                f'{K / n:.1f} older keys of its own image as negatives. '
                f'Use more images, or a smaller batch '
                f'(train_dataloader.batch_size={max(1, n // (4 * world))}) '
                f'and queue (model.queue_len).')
        if n is not None and K > self.queue_ratio * n:
            share = own_key_share(K, n)
            sug = 2**int(math.floor(math.log2(max(n / 4, 1))))
            self._warn(
                f'the queue (model.queue_len={K}) is large against the '
                f'{n} images: about {100 * share:.0f}% of the queries have '
                f'an older key of their own image among the negatives '
                f'(the mean count is {K / n:.2f}). Suggested: '
                f'model.queue_len={sug} '
                f'({100 * own_key_share(sug, n):.0f}%).')
        groups = model.split_bn_groups
        if world == 1 and groups <= 1:
            sug = next((g for g in (8, 4, 2) if B % g == 0 and B // g >= 2),
                       None)
            self._warn(
                'one process and no split BN: shuffle-BN does nothing '
                'here, so the query and the key share the batch statistics '
                'and the contrastive task can be solved through BN. '
                + (f'Suggested: model.split_bn_groups={sug}.' if sug else
                   'Use a batch of at least 4 with model.split_bn_groups=2, '
                   'or several processes.'))
        if model.is_dense:
            size = self._crop_size(runner)
            grid = self._grid(model, size) if size else None
            if grid is not None and grid < self.min_grid:
                stride = max(1, size // grid)
                self._warn(
                    f'{name}: the dense grid is {grid}x{grid} for {size} px '
                    f'crops (backbone stride ~{stride}), too coarse for the '
                    f'dense loss (below {self.min_grid}x{self.min_grid}). '
                    f'Suggested: a crop size of at least '
                    f'{self.min_grid * stride} px (the RandomResizedCrop '
                    f'size in train_dataloader.dataset.pipeline).')
            has_warmup = any(isinstance(h, DenseCLHook)
                             for h in runner.hooks)
            if not has_warmup and float(model.loss_lambda) > 0:
                sug = max(1, int(getattr(runner, 'max_iters', 0) or 0) // 10)
                self._warn(
                    f'{name} without the lambda warm-up hook: the dense '
                    f'loss is on from iteration 0. Suggested: '
                    f"custom_hooks=[dict(type='DenseCLHook', "
                    f'start_iters={sug})] (a tenth of the run).')
        opt = getattr(runner.optim_wrapper, 'optimizer', None)
        if isinstance(opt, torch.optim.SGD) and opt.param_groups:
            g = opt.param_groups[0]
            lr = float(g.get('initial_lr', g['lr']))
            rule = LR_PER_256 * total / 256
            ratio = lr / rule
            if ratio > self.lr_factor or ratio < 1 / self.lr_factor:
                self._warn(
                    f'optim_wrapper.optimizer.lr={lr:g} is {ratio:.3g}x the '
                    f'linear scaling rule for a total batch of {total} '
                    f'({LR_PER_256} per 256 images). Suggested: '
                    f'optim_wrapper.optimizer.lr={rule:.3g}.')
