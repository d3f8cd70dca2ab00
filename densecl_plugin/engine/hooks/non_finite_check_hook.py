# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Stop at the first non-finite loss, weight or queue, before any save."""
from typing import Dict, Iterable, List, Optional

import torch
from mmengine.hooks import Hook

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.checks import check_int
from .model_contract import unwrapped_model


class NonFiniteLossError(FloatingPointError):
    """Training diverged: a loss term, a weight or a queue is NaN/inf."""


def _all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """One fused reduction, one host sync: True iff every element is finite.

    The sum of a tensor is finite iff its elements are (NaN and inf
    propagate; +inf + -inf is NaN), barring an overflow of finite values
    beyond 3e38, which is itself a divergence.
    """
    sums = [t.detach().sum() for t in tensors
            if t.is_floating_point() and t.numel()]
    if not sums:
        return True
    return bool(torch.isfinite(torch.stack(
        [s.float() for s in sums]).sum()))


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Raise :class:`NonFiniteLossError` at the first non-finite loss term,
    weight or queue, so a diverged run stops clearly and saves nothing.

    After each checked training step (``after_train_iter``, priority
    ``ABOVE_NORMAL``: before MMEngine's ``CheckpointHook`` at ``VERY_LOW``)
    it checks every loss term the model returned and every floating
    parameter and buffer (the queues included) with one fused reduction.
    A non-finite gradient shows as non-finite weights after the step (the
    gradients are freed by then); a step that AMP's loss scaler skipped
    leaves the weights finite and is not an error. It also checks the
    ``state_dict`` of every checkpoint before it is written
    (``before_save_checkpoint``), whatever ``interval`` is, so no
    checkpoint holding NaN/inf weights or queues is ever written and
    ``last_checkpoint`` keeps naming the last good one.

    The error names the iteration, every loss term with its value, the lr
    of each parameter group and the keys to change.

    Downstream (mmdet/mmseg) configs can use it as
    ``custom_imports = dict(imports=['densecl_plugin.engine'])`` and
    ``default_hooks = dict(non_finite=dict(
    type='densecl_plugin.NonFiniteCheckHook'))``.

    Args:
        interval (int): check the weights every ``interval`` iterations
            (the loss terms are checked every iteration). Defaults to 1.
        check_params (bool): check the weights and buffers, not only the
            loss terms. Defaults to True.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1, check_params: bool = True) -> None:
        check_int('NonFiniteCheckHook', 'interval', interval, 1)
        self.interval = interval
        self.check_params = check_params

    @staticmethod
    def _lr(runner) -> str:
        try:
            lrs = runner.optim_wrapper.get_lr()
        except Exception:  # noqa: BLE001 (a message, not a failure)
            return '?'
        return ', '.join(f'{k}={[float(f"{v:.4g}") for v in vals]}'
                         for k, vals in lrs.items())

    @staticmethod
    def _terms(outputs: Optional[dict]) -> Dict[str, float]:
        terms = {}
        for k, v in (outputs or {}).items():
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                terms[k] = float(v.detach())
            elif isinstance(v, (int, float)):
                terms[k] = float(v)
        return terms

    def _non_finite_tensors(self, named) -> List[str]:
        return [n for n, t in named if t.is_floating_point()
                and not bool(torch.isfinite(t.detach()).all())]

    def _fail(self, runner, what: str, outputs=None) -> None:
        terms = self._terms(outputs)
        term_txt = ', '.join(f'{k}={v:.4g}' for k, v in terms.items())
        cfg = getattr(runner, 'cfg', None)
        amp = 'AmpOptimWrapper' in str(
            (cfg or {}).get('optim_wrapper', {}).get('type', ''))
        raise NonFiniteLossError(
            f'Training diverged at iteration {runner.iter + 1}: {what}. '
            f'Loss terms: {term_txt or "n/a"}; lr: {self._lr(runner)}. '
            f'No checkpoint of this state was written; the last good one '
            f'is {runner.message_hub.get_info("last_ckpt") or "none yet"} '
            f'(`--resume` picks it). Likely fixes: a lower lr '
            f'(optim_wrapper.optimizer.lr, e.g. a tenth of it, or follow '
            f'the linear scaling rule 0.03 x total batch / 256), gradient '
            f'clipping (optim_wrapper.clip_grad=dict(max_norm=...)), a '
            f'longer warm-up (param_scheduler)'
            + ('; with --amp, dynamic loss scaling '
               '(optim_wrapper.loss_scale="dynamic") or fp32 (drop --amp)'
               if amp else '; or, if you train with --amp, fp32 instead')
            + '.')

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch=None, outputs=None) -> None:
        """Check the loss terms, then (every ``interval``) the weights."""
        terms = self._terms(outputs)
        bad = [k for k, v in terms.items() if not torch.isfinite(
            torch.tensor(v))]
        if bad:
            self._fail(runner, f'non-finite loss term(s) {bad}', outputs)
        if self.check_params and self.every_n_train_iters(
                runner, self.interval):
            model = unwrapped_model(runner)
            tensors = list(model.parameters()) + list(model.buffers())
            if not _all_finite(tensors):
                named = list(model.named_parameters()) + list(
                    model.named_buffers())
                names = self._non_finite_tensors(named)
                self._fail(runner, f'non-finite weights/buffers after the '
                           f'step: {names[:8]}'
                           + (f' and {len(names) - 8} more'
                              if len(names) > 8 else ''), outputs)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to save a state dict with a NaN/inf weight or queue."""
        state = checkpoint.get('state_dict', {})
        tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
        if not _all_finite(tensors):
            names = self._non_finite_tensors(
                [(k, v) for k, v in state.items()
                 if isinstance(v, torch.Tensor)])
            self._fail(runner, f'the checkpoint about to be written holds '
                       f'non-finite tensors {names[:8]}')
