# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The InfoNCE head of momentum contrast (MoCo v2, DenseCL)."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor

from densecl_plugin.registry import MODELS
from ..losses.queue_infonce_loss import queue_infonce_loss


@MODELS.register_module()
class ContrastiveHead(BaseModule):
    """InfoNCE: cross-entropy of ``cat([l_pos, l_neg]) / T`` with label 0.

    One entry point, :meth:`loss_queue`, from queries, their positive keys
    and a queue ``(q, k, queue)``; it never materialises the ``(M, 1 + K)``
    logits (see :func:`~densecl_plugin.models.losses.queue_infonce_loss`,
    the functional form, which the benchmarks in
    :mod:`densecl_lab.benchmarks` also time). DenseCL and MoCo v2 call
    it. mmpretrain's logits entry ``loss(pos, neg)`` is not provided:
    nothing here computes the logits.

    Args:
        loss (dict, optional): mmpretrain's loss argument, accepted so that
            its configs port unchanged: a ``CrossEntropyLoss`` of any scope
            (``'CrossEntropyLoss'``, ``'mmpretrain.CrossEntropyLoss'``,
            ``'mmcls.CrossEntropyLoss'`` ...) whose only non-default option
            may be ``loss_weight`` (which scales the loss). The loss is always
            computed by the exact chunked InfoNCE here. Defaults to None
            (plain cross-entropy, weight 1).
        temperature (float): ``T``. Defaults to 0.1 (the configs of DenseCL
            and MoCo v2 set 0.2).
        chunk_size (int, optional): Rows per chunk of :meth:`loss_queue`.
            Defaults to None (at most 32 MiB of float32 logits per chunk).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    #: the options of mmpretrain's CrossEntropyLoss and their defaults (any
    #: other value would change the loss, which this head does not do)
    _CE_DEFAULTS = dict(use_sigmoid=False, use_soft=False, reduction='mean',
                        class_weight=None, pos_weight=None)

    def __init__(self,
                 loss: Optional[dict] = None,
                 temperature: float = 0.1,
                 chunk_size: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.loss_weight = self._loss_weight(loss)
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f'ContrastiveHead: temperature must be a number '
                             f'> 0, got {temperature!r}')
        if chunk_size is not None and (not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError(f'ContrastiveHead: chunk_size must be a positive '
                             f'int or None, got {chunk_size!r}')
        self.temperature = float(temperature)
        self.chunk_size = chunk_size

    @classmethod
    def _loss_weight(cls, loss: Optional[dict]) -> float:
        """Check mmpretrain's ``loss`` config; return its ``loss_weight``."""
        if loss is None:
            return 1.0
        if not isinstance(loss, dict) or not isinstance(loss.get('type'), str):
            raise TypeError(f"ContrastiveHead: loss must be None or a dict "
                            f"with a 'type', got {loss!r}")
        if loss['type'].rsplit('.', 1)[-1] != 'CrossEntropyLoss':
            raise ValueError(f"ContrastiveHead: loss type {loss['type']!r} is "
                             f"not supported; InfoNCE is a cross-entropy "
                             f"(use dict(type='CrossEntropyLoss') or omit "
                             f"loss)")
        for key, value in loss.items():
            if key in ('type', 'loss_weight'):
                continue
            if key not in cls._CE_DEFAULTS:
                raise ValueError(f'ContrastiveHead: unknown option {key!r} '
                                 f'in loss={loss!r}')
            if value != cls._CE_DEFAULTS[key]:
                raise ValueError(
                    f'ContrastiveHead: loss option {key}={value!r} is not '
                    f'supported (only {key}={cls._CE_DEFAULTS[key]!r} gives '
                    f'the InfoNCE of MoCo/DenseCL)')
        weight = loss.get('loss_weight', 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not weight > 0:
            raise ValueError(f'ContrastiveHead: loss_weight must be a number '
                             f'> 0, got {weight!r}')
        return float(weight)

    def loss_queue(self, q: Tensor, k: Tensor, queue: Tensor,
                   valid: Optional[Tensor] = None) -> Tensor:
        """The InfoNCE of queries against their keys and a queue, frugally.

        Equals ``F.cross_entropy(cat([l_pos, l_neg], 1) / T, zeros) *
        loss_weight`` with ``l_pos = (q * k).sum(1, keepdim=True)`` and
        ``l_neg = q @ queue``, computed in float32 (or float64) also under
        autocast.

        Args:
            q (Tensor): Queries, shape ``(M, D)``.
            k (Tensor): Positive keys, shape ``(M, D)``.
            queue (Tensor): Negative keys, shape ``(D, K)``.
            valid (Tensor, optional): Bool ``(M,)``; False rows are left out.
                Defaults to None.

        Returns:
            Tensor: The scalar mean loss.
        """
        loss = queue_infonce_loss(q, k, queue, self.temperature, valid,
                                  self.chunk_size)
        return loss if self.loss_weight == 1.0 else loss * self.loss_weight
