# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Top-k classification accuracy."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric

from densecl_plugin.registry import METRICS


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor,
                  topk: Sequence[int]) -> List[float]:
    """Percent of samples whose label is among the k highest scores.

    Args:
        scores (torch.Tensor): ``(N, C)`` class scores.
        labels (torch.Tensor): ``(N,)`` ground-truth class indices.
        topk (Sequence[int]): the k values.

    Returns:
        list[float]: accuracy in percent, one per k.
    """
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f'need (N, C) scores and (N,) labels, got '
                         f'{tuple(scores.shape)} and {tuple(labels.shape)}')
    num_classes = scores.shape[1]
    if max(topk) > num_classes:
        raise ValueError(f'Accuracy: topk={tuple(topk)} asks for more '
                         f'guesses than the {num_classes} classes; set '
                         'e.g. topk=(1, )')
    pred = scores.topk(max(topk), dim=1).indices  # (N, maxk)
    hit = pred == labels[:, None]  # (N, maxk)
    return [hit[:, :k].any(dim=1).float().mean().item() * 100 for k in topk]


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy (percent) of ``pred_score`` against ``gt_label``.

    Reports ``<prefix>/top<k>`` for each k, e.g. ``accuracy/top1`` and
    ``accuracy/top5``.

    Args:
        topk (int | Sequence[int]): the k values. Defaults to ``(1, 5)``.
        collect_device (str): ``'cpu'`` or ``'gpu'`` for gathering results
            across ranks. Defaults to ``'cpu'``.
        prefix (str, optional): metric name prefix. Defaults to
            ``'accuracy'``.
    """
    default_prefix = 'accuracy'

    def __init__(self,
                 topk: Union[int, Sequence[int]] = (1, 5),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        if not topk or not all(isinstance(k, int) and k >= 1 for k in topk):
            raise ValueError(f'Accuracy: topk must be positive ints, got '
                             f'{topk!r}')
        self.topk = topk

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each sample's scores and label.

        Args:
            data_batch (dict): the batch (unused).
            data_samples (Sequence[dict]): model outputs with ``pred_score``
                and ``gt_label``.
        """
        for ds in data_samples:
            if 'pred_score' not in ds or 'gt_label' not in ds:
                raise KeyError('Accuracy needs pred_score and gt_label in '
                               f'each data sample, got keys {sorted(ds)}')
            self.results.append(dict(
                pred_score=ds['pred_score'].detach().cpu().float(),
                gt_label=ds['gt_label'].detach().cpu().long().view(-1)[0]))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Top-k accuracy over all processed samples.

        Args:
            results (list[dict]): what :meth:`process` kept (all ranks).

        Returns:
            dict[str, float]: ``top<k>`` -> percent.
        """
        scores = torch.stack([r['pred_score'] for r in results])  # (N, C)
        labels = torch.stack([r['gt_label'] for r in results])  # (N,)
        accs = topk_accuracy(scores, labels, self.topk)
        return {f'top{k}': acc for k, acc in zip(self.topk, accs)}
