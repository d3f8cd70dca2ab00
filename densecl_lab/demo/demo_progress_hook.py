# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``DemoProgressHook``: a progress bar with ETA for any MMEngine run, and a
record of what the demo reports (loss curve, metrics, times)."""
import json
import numbers
import os
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from densecl_plugin.registry import HOOKS


def _to_float(value: Any) -> Optional[float]:
    """A scalar (tensor or number) as a float; None for anything else."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else None
    if isinstance(value, (numbers.Real, np.generic)) and not isinstance(
            value, (bool, np.bool_)):
        return float(value)
    return None


def progress_bar(total: int, desc: str, enable: bool = True):
    """A tqdm bar (count, rate, ETA) on the real terminal, or None.

    It writes to ``sys.__stderr__``, so it stays visible while the demo sends
    ``stdout`` / ``stderr`` to its log file; away from a terminal it redraws
    every 5 s instead of every 0.2 s.

    Args:
        total (int): steps to go.
        desc (str): the label.
        enable (bool): False gives None (no bar). Defaults to True.
    """
    if not enable:
        return None
    from tqdm import tqdm
    stream = sys.__stderr__ or sys.stderr
    tty = hasattr(stream, 'isatty') and stream.isatty()
    return tqdm(total=total, desc=desc, file=stream, leave=True,
                dynamic_ncols=True, unit='it',
                mininterval=0.2 if tty else 5.0,
                bar_format='{desc}: {percentage:3.0f}%|{bar}| '
                '{n_fmt}/{total_fmt} [{elapsed}<{remaining}, '
                '{rate_fmt}{postfix}]')


@HOOKS.register_module()
class DemoProgressHook(Hook):
    """Show a tqdm bar (iterations, rate, ETA, loss) during training and
    validation, and record the run for the demo's report.

    It records, and writes to ``record_file`` after training:

    - ``losses``: one dict per training iteration, ``{'iter': i, 'loss': ...,
      'loss_single': ...}`` (every key of the model's log variables that
      contains ``'loss'``), plus ``'lambda'``, the weight of DenseCL's dense
      loss in that iteration, for a model with a ``loss_lambda``;
    - ``metrics``: what the last validation returned;
    - ``train_time``: seconds from the first to the end of the last training
      iteration, validation excluded; ``val_time``: seconds of validation;
    - with ``init_checkpoint``, the model's weights right after MMEngine
      initialised them (before the first iteration) are saved there as
      ``{'state_dict': ...}``: the exact random init the run started from;
      with ``final_checkpoint``, the weights after training, alike. Unlike
      a Runner checkpoint (optimizer, message hub), these hold tensors
      only, so ``torch.load(weights_only=True)`` reads them anywhere.

    Args:
        desc (str): label of the bar. Defaults to ``'train'``.
        record_file (str, optional): where to write the record (JSON).
            Defaults to None: ``<work_dir>/demo_record.json``.
        init_checkpoint (str, optional): where to save the initial weights.
            Defaults to None (not saved).
        final_checkpoint (str, optional): where to save the weights after
            training. Defaults to None (not saved).
        enable_bar (bool): draw the bars (records are kept either way).
            Defaults to True.
    """

    priority = 'VERY_LOW'

    def __init__(self, desc: str = 'train',
                 record_file: Optional[str] = None,
                 init_checkpoint: Optional[str] = None,
                 final_checkpoint: Optional[str] = None,
                 enable_bar: bool = True) -> None:
        if not isinstance(desc, str):
            raise TypeError(f'DemoProgressHook: desc must be a str, got '
                            f'{type(desc).__name__}')
        self.desc = desc
        self.record_file = record_file
        self.init_checkpoint = init_checkpoint
        self.final_checkpoint = final_checkpoint
        self.enable_bar = enable_bar
        self.losses: List[Dict[str, float]] = []
        self.metrics: Dict[str, Any] = {}
        self.train_time = 0.0
        self.val_time = 0.0
        self._bar = None
        self._val_bar = None
        self._t_start = self._t_val = 0.0

    # training ------------------------------------------------------------
    @staticmethod
    def _save_weights(runner, path: str, note: str) -> None:
        """Save the model's state dict (tensors only) to ``path``."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        torch.save({'state_dict': {k: v.detach().cpu().contiguous().clone()
                                   for k, v in model.state_dict().items()},
                    'meta': dict(iter=runner.iter, note=note)}, path)

    def before_train(self, runner) -> None:
        """Open the bar; save the initial weights if asked."""
        if self.init_checkpoint:
            self._save_weights(runner, self.init_checkpoint,
                               'weights before training')
        self._bar = progress_bar(runner.max_iters - runner.iter, self.desc,
                                 self.enable_bar)
        self._t_start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Record the losses of this iteration and advance the bar."""
        self.train_time = time.perf_counter() - self._t_start - self.val_time
        record = {'iter': runner.iter + 1}
        for key, value in (outputs or {}).items():
            if 'loss' in key:
                number = _to_float(value)
                if number is not None:
                    record[key] = number
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if hasattr(model, 'loss_lambda'):
            record['lambda'] = float(model.loss_lambda)
        self.losses.append(record)
        if self._bar is not None:
            if 'loss' in record:
                self._bar.set_postfix(loss=f'{record["loss"]:.3f}',
                                      refresh=False)
            self._bar.update(1)

    def after_train(self, runner) -> None:
        """Close the bar, write the record and the final weights."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.final_checkpoint:
            self._save_weights(runner, self.final_checkpoint,
                               'weights after training')
        path = self.record_file or osp.join(runner.work_dir,
                                            'demo_record.json')
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(self.record(), f, indent=1)

    # validation ----------------------------------------------------------
    def before_val_epoch(self, runner) -> None:
        """Open the validation bar."""
        self._t_val = time.perf_counter()
        self._val_bar = progress_bar(len(runner.val_dataloader),
                                     f'{self.desc} (val)', self.enable_bar)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs=None) -> None:
        """Advance the validation bar."""
        if self._val_bar is not None:
            self._val_bar.update(1)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Keep the metrics; close the validation bar."""
        self.metrics = {k: (_to_float(v) if _to_float(v) is not None else v)
                        for k, v in (metrics or {}).items()}
        self.val_time += time.perf_counter() - self._t_val
        if self._val_bar is not None:
            self._val_bar.close()
            self._val_bar = None

    def record(self) -> Dict[str, Any]:
        """What was recorded so far, as a JSON-able dict."""
        return dict(desc=self.desc, losses=self.losses, metrics=self.metrics,
                    train_time=self.train_time, val_time=self.val_time,
                    init_checkpoint=self.init_checkpoint,
                    final_checkpoint=self.final_checkpoint)
