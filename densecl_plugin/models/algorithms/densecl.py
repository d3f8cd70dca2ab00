# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DenseCL: Dense Contrastive Learning (Wang et al., CVPR 2021)."""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from densecl_plugin.registry import MODELS
from densecl_plugin.utils.checks import check_bool
from ..utils.correspondence import (correspondence_accuracy,
                                    geometric_correspondence_from_samples,
                                    mutual_best_matches)
from ..utils.feature_map import last_feature_map
from ..utils.profiling import region
from .base import BaseMomentumContrast

#: a matching mode: ``(q_b, k_b, data_samples) -> (ind, valid)`` with the
#: contract of :meth:`DenseCL._match`
Matcher = Callable[[Tensor, Tensor, Optional[list]],
                   Tuple[Tensor, Optional[Tensor]]]


def _neck_cells(neck, feats: tuple, query: bool) -> Tuple[Tensor, ...]:
    """The neck's outputs with the dense branch as cells ``(N, S^2, D)``.

    :class:`DenseCLNeck` gives them directly (``forward_query`` without the
    pooled ``q2`` that the query side does not use, ``forward_cells``); any
    other neck returning ``(q, q_grid (N, D, S^2), q2)`` is transposed.
    """
    method = getattr(neck, 'forward_query' if query else 'forward_cells',
                     None)
    if method is not None:
        return method(feats)
    q, q_grid, q2 = neck(feats)
    q_grid = q_grid.transpose(1, 2)  # NxS^2xD
    return (q, q_grid) if query else (q, q_grid, q2)


def _cell_similarity(q_b: Tensor, k_b: Tensor) -> Tensor:
    """Cosine similarity of every query cell with every key cell.

    Args:
        q_b (Tensor): ``(N, C, S_h, S_w)``, unit norm along C.
        k_b (Tensor): ``(N, C, S_h, S_w)``, unit norm along C.

    Returns:
        Tensor: ``(N, S^2, S^2)``, query cells along dim 1.
    """
    return torch.bmm(q_b.flatten(2).transpose(1, 2),
                     k_b.flatten(2))  # NxS^2xS^2


def _geometric_truth(q_b: Tensor, k_b: Tensor, data_samples: Optional[list],
                     device: Optional[torch.device] = None
                     ) -> Tuple[Tensor, Tensor]:
    """The key cell covering each query cell centre, from the views' crop
    boxes and flips (see
    :func:`..utils.correspondence.geometric_correspondence`).

    Args:
        q_b (Tensor): Query map ``(N, C, S_h, S_w)`` (only its grid is read).
        k_b (Tensor): Key map ``(N, C, S_h', S_w')`` (only its grid is read).
        data_samples (list, optional): With the views' geometry.
        device (torch.device, optional): Where the result goes. Defaults to
            None (the CPU).

    Returns:
        tuple[Tensor, Tensor]: ``ind`` long ``(N, S^2)`` and ``valid`` bool
        ``(N, S^2)``, computed on the CPU, returned on ``device``.
    """
    if data_samples is None:
        raise ValueError(
            "DenseCL: matching='geometric' and log_correspondence=True "
            'need the data samples: pass data_samples whose metainfo has '
            'the views\' geometry (`views`, recorded by '
            'RandomResizedCrop/RandomFlip and packed by '
            'PackSelfSupInputs)')
    return geometric_correspondence_from_samples(
        data_samples, tuple(q_b.shape[2:]),
        key_grid_size=tuple(k_b.shape[2:]), device=device)


def _feature_matches(q_b: Tensor, k_b: Tensor,
                     data_samples: Optional[list]) -> Tuple[Tensor, None]:
    """``'feature'``, the paper's matching: argmax cosine similarity, query
    -> key; every query cell enters the loss."""
    sim = _cell_similarity(q_b, k_b)  # NxS^2xS^2
    return sim.argmax(dim=2), None  # NxS^2


def _mutual_matches(q_b: Tensor, k_b: Tensor,
                    data_samples: Optional[list]) -> Tuple[Tensor, Tensor]:
    """``'mutual'``: argmax matching, keeping only mutual best matches."""
    sim = _cell_similarity(q_b, k_b)  # NxS^2xS^2
    ind, _, mutual = mutual_best_matches(sim)  # NxS^2 each
    return ind, mutual


def _geometric_matches(q_b: Tensor, k_b: Tensor,
                       data_samples: Optional[list]) -> Tuple[Tensor, Tensor]:
    """``'geometric'``: the key cell that covers the same image point as the
    query cell's centre; query cells outside the key view are not valid."""
    return _geometric_truth(q_b, k_b, data_samples, q_b.device)  # NxS^2 x2


@MODELS.register_module()
class DenseCL(BaseMomentumContrast):
    """DenseCL: MoCo v2 plus a dense, cell-to-cell contrastive loss.

    "Dense Contrastive Learning for Self-Supervised Visual Pre-Training"
    (Wang et al., CVPR 2021, https://arxiv.org/abs/2011.09157); algorithm as
    in the authors' code (WXinlong/DenseCL), with ``num_grid`` working (the
    matching features are pooled to the neck's grid) and no unused work.
    ``docs/densecl_in_plain_torch.md`` writes the same loss as one short
    plain-torch function (a test checks that it equals :meth:`loss`); read
    it first.

    Per step, with N images, an S x S grid (S^2 cells), D-dim embeddings and
    queues of length K:

    - single loss: InfoNCE of the global query ``q`` against its key ``k``
      and ``queue`` (K image-level keys);
    - dense loss: each query cell is matched to the key cell whose
      L2-normalised backbone feature (:meth:`cell_features`) is most similar
      (:meth:`_match`), and InfoNCE of the dense query ``q_grid`` against
      the matched ``k_grid`` and ``queue2`` (K *image-level* pooled dense
      keys, pooled before L2 normalisation);
    - losses ``loss_single = (1 - lambda) * CE_single``, ``loss_dense =
      lambda * CE_dense``; both queues are filled with the keys of all ranks.

    Matching modes (``matching``, the keys of :attr:`MATCHING_MODES`):
    ``'feature'`` (the paper: argmax cosine similarity of C5 features),
    ``'mutual'`` (only pairs that are each other's best match enter the dense
    loss) and ``'geometric'`` (the key cell that covers the same image point,
    from the crop boxes and flips the view transforms record in
    ``data_samples``; query cells that the key view does not see are left
    out of the dense loss). To add a mode, extend :attr:`MATCHING_MODES` (in
    a subclass) with its name and a function ``(q_b, k_b, data_samples) ->
    (ind, valid)`` with the contract of :meth:`_match`.

    Every other constructor argument, with its default, is that of
    :class:`BaseMomentumContrast` (ResNet-50 C5 with BN that trains, ``K =
    65536``, ``D = 128``, ``m = 0.999``, ``T = 0.2``).

    Args:
        loss_lambda (float): ``lambda``, weight of the dense loss, in [0, 1].
            Defaults to 0.5.
        matching (str): A key of :attr:`MATCHING_MODES`: ``'feature'``,
            ``'mutual'`` or ``'geometric'``. Defaults to ``'feature'``.
        log_correspondence (bool): Also return ``corr_acc`` from :meth:`loss`:
            over the query cells that the key view sees, the fraction whose
            feature match (the argmax of the C5 cosine similarity, which the
            loss uses unless ``matching='geometric'``) lies within one cell
            of the geometric truth (see :meth:`_correspondence_accuracy`).
            Needs ``views`` in the data samples. The name has no ``loss`` in
            it, so MMEngine logs it without adding it to the loss. Defaults
            to False; :class:`CorrespondenceHook` switches it on every N
            iterations.
        **kwargs: The arguments of :class:`BaseMomentumContrast`
            (``backbone``, ``neck``, ``head``, ``queue_len``, ``feat_dim``,
            ``momentum``, ``data_preprocessor``, ``init_cfg``,
            ``channels_last``, ``compile_backbone``, ``allow_frozen_bn``,
            ``split_bn_groups``, ``health_interval``);
            ``neck`` defaults to ``dict(type='DenseCLNeck', in_channels=2048,
            hid_channels=2048, out_channels=feat_dim, num_grid=None)``
            (:attr:`DEFAULT_NECK`).

    Raises:
        ValueError: on a ``loss_lambda`` outside [0, 1], an unknown
            ``matching`` (the message lists the valid modes), a non-bool
            ``log_correspondence``, or any error of
            :class:`BaseMomentumContrast`.
    """

    DEFAULT_NECK = dict(type='DenseCLNeck', in_channels=2048,
                        hid_channels=2048, num_grid=None)
    QUEUES = ('queue', 'queue2')  # DxK image-level keys k, pooled dense k2
    #: matching mode name -> the function that matches query to key cells
    MATCHING_MODES: Dict[str, Matcher] = {
        'feature': _feature_matches,
        'mutual': _mutual_matches,
        'geometric': _geometric_matches,
    }

    def __init__(self,
                 *,
                 loss_lambda: float = 0.5,
                 matching: str = 'feature',
                 log_correspondence: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(loss_lambda, bool) or not isinstance(
                loss_lambda, (int, float)) or not 0 <= loss_lambda <= 1:
            raise ValueError(f'DenseCL: loss_lambda must be in [0, 1], got '
                             f'{loss_lambda!r}')
        if matching not in self.MATCHING_MODES:
            raise ValueError(f'DenseCL: matching must be one of '
                             f'{tuple(self.MATCHING_MODES)}, got {matching!r}')
        check_bool('DenseCL', 'log_correspondence', log_correspondence)
        self.loss_lambda = float(loss_lambda)
        self.matching = matching
        self.log_correspondence = log_correspondence
        self.num_grid: Optional[int] = getattr(self.neck, 'num_grid', None)

    def cell_features(self, x_b: Tensor) -> Tensor:
        """The per-cell features that DenseCL matches on (and predicts).

        The backbone map is average-pooled to the neck's grid (when
        ``num_grid`` is set, so that its cells are those of the dense
        branch) and L2-normalised per cell; the dot product of two cells is
        their cosine similarity. Used for the query and key views in
        :meth:`loss`, returned by :meth:`predict` and drawn by
        :mod:`densecl_plugin.visualization.visualize_correspondence`.

        Args:
            x_b (Tensor): Backbone map, shape ``(N, C, H, W)``.

        Returns:
            Tensor: Shape ``(N, C, S_h, S_w)`` (``S_h = S_w = num_grid``
            when set, else ``H, W``), unit norm along ``C``.
        """
        if self.num_grid is not None:
            x_b = F.adaptive_avg_pool2d(x_b, self.num_grid)  # NxCxSxS
        return F.normalize(x_b, dim=1)  # NxCxS_hxS_w

    def _encode_key(self, im_k: Tensor) -> Tuple[Tensor, ...]:
        """Key encoder on the (shuffled) key view.

        Returns:
            tuple[Tensor, ...]: ``k`` ``(N, D)``, ``k_grid`` ``(N, S^2,
            D)`` (cells x dims, contiguous), ``k2`` ``(N, D)`` (all
            L2-normalised along D) and the matching features ``k_b`` ``(N,
            C, S_h, S_w)``.
        """
        backbone_k, neck_k = self.encoder_k.module
        with region('key_backbone'):
            k_b = last_feature_map(backbone_k(im_k), 'DenseCL')  # NxCxHxW
        with region('key_neck'):
            # NxD, NxS^2xD, NxD
            k, k_grid, k2 = _neck_cells(neck_k, (k_b, ), query=False)
        with region('normalize'):
            k = F.normalize(k, dim=1)  # NxD
            k_grid = F.normalize(k_grid, dim=2)  # NxS^2xD
            k2 = F.normalize(k2, dim=1)  # NxD: pooled first, then normalised
        with region('cell_features'):
            k_b = self.cell_features(k_b)  # NxCxS_hxS_w
        return k, k_grid, k2, k_b

    def _match(self, q_b: Tensor, k_b: Tensor, data_samples: Optional[list]
               ) -> Tuple[Tensor, Optional[Tensor]]:
        """Match every query cell to a key cell, by the ``matching`` mode.

        Args:
            q_b (Tensor): Query matching features ``(N, C, S_h, S_w)``, unit
                norm along C (see :meth:`cell_features`).
            k_b (Tensor): Key matching features, same shape.
            data_samples (list, optional): The batch's data samples (their
                metainfo ``views`` hold the crop geometry).

        Returns:
            tuple[Tensor, Tensor | None]: ``ind`` (long ``(N, S^2)``: the
            key cell matched to each query cell, cells in row-major order)
            and ``valid`` (bool ``(N, S^2)``: which query cells enter the
            dense loss; None for all).
        """
        matcher = self.MATCHING_MODES[self.matching]
        with torch.no_grad(), torch.autocast(q_b.device.type, enabled=False):
            q_b = q_b.detach().float()  # NxCxS_hxS_w
            k_b = k_b.float()  # NxCxS_hxS_w
            return matcher(q_b, k_b, data_samples)  # NxS^2, NxS^2 | None

    @torch.no_grad()
    def _correspondence_accuracy(self, q_b: Tensor, k_b: Tensor, ind: Tensor,
                                 data_samples: Optional[list]
                                 ) -> Optional[Tensor]:
        """How often the feature matches agree with the crop geometry.

        Reuses the matches of the loss where they are the feature argmax
        (``'feature'`` and ``'mutual'`` matching); with ``'geometric'``
        matching the feature argmax is computed here. The geometry is
        computed on the CPU and copied without blocking, so this adds no
        device synchronisation to the step.

        Args:
            q_b (Tensor): Query matching features ``(N, C, S_h, S_w)``.
            k_b (Tensor): Key matching features, same shape.
            ind (Tensor): ``(N, S^2)`` matches of :meth:`_match`.
            data_samples (list, optional): With the views' geometry.

        Returns:
            Tensor | None: The fraction in ``[0, 1]`` of overlapping query
            cells whose feature match is within one cell (Chebyshev) of the
            truth; None when no query cell of the batch lies in its key view.
        """
        gt_ind, gt_valid = _geometric_truth(q_b, k_b, data_samples)  # CPU
        if not bool(gt_valid.any()):
            return None
        if self.matching == 'geometric':
            ind = _cell_similarity(q_b.float(), k_b.float()).argmax(
                dim=2)  # NxS^2 feature argmax
        gt_ind = gt_ind.to(ind.device, non_blocking=True)  # NxS^2
        gt_valid = gt_valid.to(ind.device, non_blocking=True)  # NxS^2
        return correspondence_accuracy(ind, gt_ind, gt_valid,
                                       tuple(k_b.shape[2:]))

    def loss(self, inputs: List[Tensor],
             data_samples: Optional[list] = None) -> dict:
        """The two DenseCL losses of one batch, and the queue update.

        Args:
            inputs (list[Tensor]): Two views ``im_q, im_k``, each ``(N, 3,
                H, W)`` (further views are ignored).
            data_samples (list, optional): Data samples. Defaults to None.

        Returns:
            dict[str, Tensor]: ``loss_single`` and ``loss_dense``; with
            ``log_correspondence``, also ``corr_acc`` (not a loss; absent
            when no query cell of the batch lies in its key view); on
            health iterations (``health_interval``) also the ``health_*``
            metrics, with ``health_single_infonce`` and
            ``health_dense_infonce``, the two InfoNCEs before the lambda
            weighting.
        """
        im_q, im_k = self._views(inputs, 'DenseCL')[:2]  # Nx3xHxW each
        with region('query_backbone'):
            q_b = last_feature_map(self.backbone(im_q), 'DenseCL')  # NxCxHxW
        with region('query_neck'):
            # NxD, NxS^2xD (cells x dims, contiguous); q2 is not needed
            q, q_grid = _neck_cells(self.neck, (q_b, ), query=True)
        with region('normalize'):
            q = F.normalize(q, dim=1)  # NxD
            q_grid = F.normalize(q_grid, dim=2)  # NxS^2xD
        with region('cell_features'), torch.no_grad():
            q_b = self.cell_features(q_b.detach())  # NxCxS_hxS_w

        # NxD, NxS^2xD, NxD, NxCxS_hxS_w
        k, k_grid, k2, k_b = self._key_forward(im_k)

        with region('single_infonce'):
            loss_single = self.head.loss_queue(q, k, self.queue)

        with region('matching'):
            ind, valid = self._match(q_b, k_b, data_samples)  # NxS^2 x2
        with region('gather'):
            # (N*S^2)xD: the matched key cell of every query cell, one
            # index_select of the flat cells (rows of D contiguous values)
            N, S2 = ind.shape
            offset = torch.arange(0, N * S2, S2, device=ind.device)  # N
            k_dense = k_grid.reshape(N * S2, self.D).index_select(
                0, (ind + offset[:, None]).reshape(-1))
            q_dense = q_grid.reshape(N * S2, self.D)  # a view
        with region('dense_infonce'):
            loss_dense = self.head.loss_queue(
                q_dense, k_dense, self.queue2,
                None if valid is None else valid.reshape(-1))

        health = {}
        if self._health_due():  # before the enqueue
            health = self._health(q, k)
            # unweighted, so a lambda of 0 (warm-up) still shows them
            health['health_single_infonce'] = loss_single.detach()
            health['health_dense_infonce'] = loss_dense.detach()
        with region('enqueue'):
            self._dequeue_and_enqueue(queue=k, queue2=k2)
        lam = self.loss_lambda
        losses = dict(loss_single=loss_single * (1 - lam),
                      loss_dense=loss_dense * lam, **health)
        if self.log_correspondence:
            corr_acc = self._correspondence_accuracy(q_b, k_b, ind,
                                                     data_samples)
            if corr_acc is not None:
                losses['corr_acc'] = corr_acc
        return losses

    def predict(self, inputs: Union[Tensor, Sequence[Tensor]],
                data_samples: Optional[list] = None):
        """The L2-normalised dense backbone map of the (first) view.

        Args:
            inputs (Tensor | Sequence[Tensor]): A view ``(N, 3, H, W)`` or a
                list of views (the first is used).
            data_samples (list, optional): Data samples. Defaults to None.

        Returns:
            Tensor | list: Without ``data_samples``, a tensor ``(N, C,
            S^2)`` (pooled to ``num_grid`` when set, unit norm along C);
            with them, the data samples, each given a field ``dense_feat``
            of shape ``(C, S^2)``.
        """
        feats = self.extract_feat(inputs)
        x_b = last_feature_map(feats, 'DenseCL')  # NxCxHxW
        dense = self.cell_features(x_b).flatten(2)  # NxCxS^2
        if data_samples is None:
            return dense
        for sample, feat in zip(data_samples, dense):
            sample.set_field(feat, 'dense_feat')
        return data_samples
