# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Start-of-run warnings for DenseCL / MoCo v2 settings that do not learn."""
import logging
from typing import List, NamedTuple, Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.auto_values import (LARGE_DATA, LR_PER_256,
                                              MIN_DENSE_GRID, auto_queue_len,
                                              auto_split_bn_groups,
                                              auto_warmup_iters, own_key_share,
                                              sqrt_rule_lr)
from densecl_plugin.utils.config_search import crop_size
from .densecl_hook import DenseCLHook
from .model_contract import contrast_model

__all__ = ['PretrainingSanityHook', 'RunFacts', 'own_key_share',
           'LR_PER_256']


class RunFacts(NamedTuple):
    """What the checks read, gathered from a runner
    (:meth:`PretrainingSanityHook.facts`) or from a config and a data set
    size (:meth:`PretrainingSanityHook.facts_for`)."""
    name: str  #: the model's class name
    n: Optional[int]  #: images in the data set (None: unknown)
    batch: int  #: per process
    world: int  #: processes
    K: int  #: queue length
    groups: int  #: split_bn_groups
    dense: bool  #: a dense loss (DenseCL)
    loss_lambda: float
    size: Optional[int]  #: view size
    grid: Optional[int]  #: dense grid side at that size
    has_warmup: bool  #: a DenseCLHook is on
    max_iters: int
    lr: Optional[float]  #: SGD's initial lr (None: not SGD)

    @property
    def total(self) -> int:
        """The total batch."""
        return self.batch * self.world


@HOOKS.register_module()
class PretrainingSanityHook(Hook):
    """Warn, when training starts, about settings that keep a run from
    learning; each warning names the config key and a suggested value.

    Nothing is refused. The suggestions are the values ``'auto'`` resolves
    to (:mod:`densecl_plugin.utils.auto_values`), so a config with
    ``'auto'`` draws none of them; neither do the paper's recipes at their
    data set sizes (tested, ``docs/auto_values.md``). The checks
    (``before_train``, after the model is built and any checkpoint
    resumed; :meth:`check` holds them):

    * **data set smaller than one total batch** (``min_batches``): every
      batch then holds an image twice, and with a queue of ``K >= n``
      every query meets older keys of its own image;
    * **queue large against the data set**: ``K > n * queue_ratio`` below
      :data:`~densecl_plugin.utils.auto_values.LARGE_DATA` images,
      ``K > n * large_queue_ratio`` from there on. By
      :func:`own_key_share`, at ``K = n / 2`` 1 query in 8 has an older
      key of its own image among its negatives, at ``K = n`` half of them.
      On the demo pool (405 images) K = 256 (0.63 n) collapsed (160
      iterations) and 128 (0.32 n) stalled (640 iterations); the
      authors' COCO recipe learns with K = 65536 = 0.55 n of 118,287
      images, so on data sets of that size only ``K > n`` is flagged.
      The suggestion is ``'auto'``'s
      :func:`~densecl_plugin.utils.auto_values.auto_queue_len`;
    * **one process without split BN**: in one process shuffle-BN does
      nothing, so query and key share the batch statistics (MoCo's
      "cheating" through BN); the key is ``model.split_bn_groups``;
    * **DenseCL dense grid below** ``min_grid`` (3x3): measured by one
      ``no_grad`` forward of the backbone on a zero image of the
      pipeline's crop size. 3x3 (80 px, ResNet-18) is the grid measured to
      learn here (docs/pretraining_health.md; 112 px, a 4x4 grid, learned
      a little better at 1.3x the time); at 1x1 the dense loss is the
      global one again;
    * **DenseCL without DenseCLHook** (the lambda warm-up), below
      ``LARGE_DATA`` images: the authors run the dense loss from iteration
      0 on COCO and ImageNet;
    * **lr far from the square-root scaling rule** (SGD, 0.03 at a total
      batch of 256, ``x sqrt(B / 256)``): beyond ``lr_factor`` (16) either
      way. The lrs seen to learn span 1-10x that rule: 0.0075-0.03 at
      batch 16 in the small-data search (the linear rule gives 0.0019
      there), 0.03 (ImageNet) and 0.3 (COCO) at 256 in the paper.

    Args:
        min_batches (int): warn below this many total batches of images.
            Defaults to 1.
        queue_ratio (float): warn when ``K > n * queue_ratio`` on a data
            set of fewer than ``LARGE_DATA`` images. Defaults to 0.5.
        large_queue_ratio (float): the same from ``LARGE_DATA`` images on.
            Defaults to 1.0.
        min_grid (int): warn when DenseCL's dense grid side is below this.
            Defaults to 3.
        lr_factor (float): warn when the lr is off the square-root rule by
            more than this factor. Defaults to 16.
    """

    priority = 'LOW'

    def __init__(self, min_batches: int = 1, queue_ratio: float = 0.5,
                 large_queue_ratio: float = 1.0,
                 min_grid: int = MIN_DENSE_GRID,
                 lr_factor: float = 16.) -> None:
        self.min_batches = min_batches
        self.queue_ratio = queue_ratio
        self.large_queue_ratio = large_queue_ratio
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

    @classmethod
    def facts_for(cls, model, n: Optional[int], batch: int, world: int,
                  size: Optional[int], has_warmup: bool, max_iters: int,
                  lr: Optional[float]) -> RunFacts:
        """The facts of a momentum-contrast ``model`` (unwrapped) with the
        rest given: what :meth:`facts` reads from a runner, and what a test
        gives for a data set that is not on disk."""
        dense = model.is_dense
        return RunFacts(
            name=type(model).__name__, n=n, batch=batch, world=world,
            K=model.queue_len, groups=model.split_bn_groups, dense=dense,
            loss_lambda=float(model.loss_lambda) if dense else 0.,
            size=size, grid=cls._grid(model, size) if dense and size else
            None, has_warmup=has_warmup, max_iters=max_iters, lr=lr)

    @classmethod
    def facts(cls, runner) -> Optional[RunFacts]:
        """The runner's facts; None when its model is not a
        momentum-contrast pre-training model."""
        model = contrast_model(runner)
        if model is None:
            return None
        dl = runner.train_dataloader
        try:
            n = len(dl.dataset)
        except TypeError:
            n = None
        lr = None
        opt = getattr(runner.optim_wrapper, 'optimizer', None)
        if isinstance(opt, torch.optim.SGD) and opt.param_groups:
            g = opt.param_groups[0]
            lr = float(g.get('initial_lr', g['lr']))
        return cls.facts_for(
            model, n, int(dl.batch_size or 1), get_world_size(),
            cls._crop_size(runner),
            any(isinstance(h, DenseCLHook) for h in runner.hooks),
            int(getattr(runner, 'max_iters', 0) or 0), lr)

    def before_train(self, runner) -> None:
        """Run the checks once."""
        facts = self.facts(runner)
        if facts is not None:
            for msg in self.check(facts):
                self._warn(msg)

    def check(self, f: RunFacts) -> List[str]:
        """The warnings for ``f`` (empty: nothing to suggest)."""
        out = []
        B, world, total, n, K = f.batch, f.world, f.total, f.n, f.K
        if n is not None and n < self.min_batches * total:
            out.append(
                f'the data set has {n} images for a batch of {B} per '
                f'process x {world} process(es) = {total}: each batch '
                f'repeats every image about {total / n:.1f} times, so with '
                f'a queue of K={K} each query meets about {K / n:.1f} older '
                f'keys of its own image as negatives. Use more images, or a '
                f'smaller batch (train_dataloader.batch_size='
                f'{max(1, n // (2 * world))}) and queue (model.queue_len).')
        large = n is not None and n >= LARGE_DATA
        ratio = self.large_queue_ratio if large else self.queue_ratio
        if n is not None and K > ratio * n:
            sug = auto_queue_len(n, total)
            out.append(
                f'the queue (model.queue_len={K}) is large against the '
                f'{n} images: about {100 * own_key_share(K, n):.0f}% of the '
                f'queries have an older key of their own image among the '
                f'negatives (the mean count is {K / n:.2f}). Suggested: '
                f"model.queue_len={sug} "
                f"({100 * own_key_share(sug, n):.0f}%; or 'auto').")
        if world == 1 and f.groups <= 1:
            sug = auto_split_bn_groups(B, world)
            out.append(
                'one process and no split BN: shuffle-BN does nothing '
                'here, so the query and the key share the batch statistics '
                'and the contrastive task can be solved through BN. '
                + (f"Suggested: model.split_bn_groups={sug} (or 'auto')."
                   if sug > 1 else
                   'Use a batch of at least 4 with model.split_bn_groups=2, '
                   'or several processes.'))
        if f.dense:
            if f.grid is not None and f.grid < self.min_grid:
                stride = max(1, f.size // f.grid)
                out.append(
                    f'{f.name}: the dense grid is {f.grid}x{f.grid} for '
                    f'{f.size} px crops (backbone stride ~{stride}), too '
                    f'coarse for the dense loss (below {self.min_grid}x'
                    f'{self.min_grid}). Suggested: a crop size of at least '
                    f'{self.min_grid * stride} px (the RandomResizedCrop '
                    f'size in train_dataloader.dataset.pipeline).')
            if not f.has_warmup and f.loss_lambda > 0 and not large:
                sug = auto_warmup_iters(n or 0, f.max_iters)
                out.append(
                    f'{f.name} without the lambda warm-up hook on '
                    f"{n if n is not None else 'an unknown number of'} "
                    f'images: the dense loss is on from iteration 0, while '
                    f'its positives (an argmax over backbone features) are '
                    f'nearly arbitrary at random init. Suggested: '
                    f"custom_hooks=[dict(type='DenseCLHook', "
                    f"start_iters={sug})] (a tenth of the run; or 'auto').")
        if f.lr is not None:
            rule = sqrt_rule_lr(total)
            ratio = f.lr / rule
            if ratio > self.lr_factor or ratio < 1 / self.lr_factor:
                out.append(
                    f'optim_wrapper.optimizer.lr={f.lr:g} is {ratio:.3g}x '
                    f'the square-root scaling rule for a total batch of '
                    f'{total} ({LR_PER_256} x sqrt({total} / 256)). '
                    f'Suggested: optim_wrapper.optimizer.lr={rule:.3g} '
                    f"(or 'auto').")
        return out
