# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DenseCL: Dense Contrastive Learning (Wang et al., CVPR 2021)."""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densecl_plugin.registry import MODELS
from densecl_plugin.utils.checks import check_bool
from ..utils.correspondence import (correspondence_accuracy,
                                    geometric_correspondence_from_samples,
                                    mutual_best_matches)
from ..utils.feature_map import last_feature_map
from .base import BaseMomentumContrast

#: a matching mode: ``(q_b, k_b, data_samples) -> (ind, valid)`` with the
#: contract of :meth:`DenseCL._match`
Matcher = Callable[[Tensor, Tensor, Optional[list]],
                   Tuple[Tensor, Optional[Tensor]]]


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
    matching features are pooled to the neck's grid).
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

    The neck is called through one interface, ``neck.forward_cells(x) ->
    (global (N, D), cells (N, S^2, D))`` (see :class:`DenseCLNeck`).

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
        TypeError: on a neck without ``forward_cells``.
    """

    DEFAULT_NECK = dict(type='DenseCLNeck', in_channels=2048,
                        hid_channels=2048, num_grid=None)
    QUEUES = ('queue', 'queue2')  # DxK image-level keys k, pooled dense k2
    is_dense = True
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
        if not callable(getattr(self.neck, 'forward_cells', None)):
            raise TypeError(
                f'DenseCL: the neck {type(self.neck).__name__} has no '
                f'forward_cells(x) -> (global (N, D), cells (N, S^2, D)); '
                f'use DenseCLNeck or a neck with that method')
        self.num_grid: Optional[int] = getattr(self.neck, 'num_grid', None)

    def cell_features(self, x_b: Tensor) -> Tensor:
        """The per-cell features that DenseCL matches on (and predicts).

        The backbone map is average-pooled to the neck's grid (when
        ``num_grid`` is set, so that its cells are those of the dense
        branch) and L2-normalised per cell; the dot product of two cells is
        their cosine similarity. Used for the query and key views in
        :meth:`loss`, returned by :meth:`predict` and drawn by
        :mod:`densecl_lab.analysis.visualize_correspondence`.

        Args:
            x_b (Tensor): Backbone map, shape ``(N, C, H, W)``.

        Returns:
            Tensor: Shape ``(N, C, S_h, S_w)`` (``S_h = S_w = num_grid``
            when set, else ``H, W``), unit norm along ``C``.
        """
        if self.num_grid is not None:
            x_b = F.adaptive_avg_pool2d(x_b, self.num_grid)  # NxCxSxS
        return F.normalize(x_b, dim=1)  # NxCxS_hxS_w

    def encode(self, backbone: nn.Module, neck: nn.Module,
               im: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """One encoder on a view: the query's in :meth:`loss`, the key
        encoder's in :meth:`key_forward`.

        Args:
            backbone (nn.Module): The encoder's backbone.
            neck (nn.Module): Its neck (``forward_cells``).
            im (Tensor): The view, ``(N, 3, H, W)``.

        Returns:
            tuple[Tensor, ...]: ``q`` ``(N, D)``, ``q_grid`` ``(N, S^2, D)``
            (cells x dims, contiguous), ``q2`` ``(N, D)`` (``q_grid``
            averaged over the cells *before* the normalisation), all three
            L2-normalised along D, and the matching features ``q_b`` ``(N,
            C, S_h, S_w)`` (:meth:`cell_features`, no gradient).
        """
        x_b = last_feature_map(backbone(im), 'DenseCL')  # NxCxHxW
        x, x_grid = neck.forward_cells(x_b)  # NxD, NxS^2xD
        x2 = x_grid.mean(dim=1)  # NxD: the cells pooled, then normalised
        with torch.no_grad():
            x_b = self.cell_features(x_b.detach())  # NxCxS_hxS_w
        return (F.normalize(x, dim=1), F.normalize(x_grid, dim=2),
                F.normalize(x2, dim=1), x_b)

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

    @staticmethod
    def _gather(k_grid: Tensor, ind: Tensor) -> Tensor:
        """The matched key cell of every query cell: ``k_grid[n, ind[n,
        s]]`` for all ``n, s``, as one ``index_select`` of the flat cells
        (rows of D contiguous values).

        Args:
            k_grid (Tensor): Key cells ``(N, S^2, D)``.
            ind (Tensor): Long ``(N, S^2)`` of :meth:`_match`.

        Returns:
            Tensor: ``(N * S^2, D)``, query cells in row-major order.
        """
        N, S2, D = k_grid.shape
        offset = torch.arange(0, N * S2, S2, device=ind.device)  # N
        return k_grid.reshape(N * S2, D).index_select(
            0, (ind + offset[:, None]).reshape(-1))  # (N*S^2)xD

    @torch.no_grad()
    def diagnostics(self, q: Tensor, k: Tensor, loss_single: Tensor,
                    loss_dense: Tensor, q_b: Tensor, k_b: Tensor,
                    ind: Tensor, data_samples: Optional[list]) -> dict:
        """What the step logs besides its losses (call before the enqueue).

        On health iterations the ``health_*`` metrics of
        :meth:`BaseMomentumContrast.diagnostics` with
        ``health_single_infonce`` and ``health_dense_infonce``, the two
        InfoNCEs before the lambda weighting (so a lambda of 0, the
        warm-up, still shows them); with ``log_correspondence``,
        ``corr_acc`` (:meth:`_correspondence_accuracy`, absent when no query
        cell of the batch lies in its key view).
        """
        out = super().diagnostics(q, k)
        if out:
            out['health_single_infonce'] = loss_single.detach()
            out['health_dense_infonce'] = loss_dense.detach()
        if self.log_correspondence:
            corr_acc = self._correspondence_accuracy(q_b, k_b, ind,
                                                     data_samples)
            if corr_acc is not None:
                out['corr_acc'] = corr_acc
        return out

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
        # query encoder: q NxD, q_grid NxS^2xD (one embedding per cell) and
        # q_b NxCxS_hxS_w (the cells' backbone features, matched on)
        q, q_grid, _, q_b = self.encode(self.backbone, self.neck, im_q)
        # key encoder, no gradient (momentum update, shuffle BN): the same
        # shapes, and k2 NxD (k_grid pooled), which queue2 stores
        k, k_grid, k2, k_b = self.key_forward(im_k)

        # global InfoNCE: the key of the same image is the positive
        loss_single = self.head.loss_queue(q, k, self.queue)  # scalar

        # matching: each query cell -> the key cell of the most similar
        # backbone feature (valid: the query cells that enter the loss)
        ind, valid = self._match(q_b, k_b, data_samples)  # NxS^2 each
        k_pos = self._gather(k_grid, ind)  # (N*S^2)xD: matched key cells
        # dense InfoNCE: the matched key cell is each query cell's positive
        loss_dense = self.head.loss_queue(  # scalar
            q_grid.reshape(-1, self.D), k_pos, self.queue2,  # (N*S^2)xD
            None if valid is None else valid.reshape(-1))  # N*S^2

        lam = self.loss_lambda
        losses = dict(loss_single=loss_single * (1 - lam),
                      loss_dense=loss_dense * lam)
        losses.update(self.diagnostics(  # before the enqueue
            q, k, loss_single, loss_dense, q_b, k_b, ind, data_samples))
        self._dequeue_and_enqueue(queue=k, queue2=k2)  # keys of all ranks
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
