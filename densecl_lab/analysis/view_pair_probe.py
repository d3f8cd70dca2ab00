# Copyright (c) densecl_plugin contributors. All rights reserved.
"""What a pre-trained encoder learned, measured on held-out view pairs.

A loss can fall while the encoder learns nothing that transfers, and it can
rise while a queue fills; these figures do not depend on the loss. Each
held-out image gives two fresh views through the config's own train
pipeline (seeded per image); both views go through the query encoder
(backbone, then the neck's global MLP) and the L2-normalised embeddings
``z1, z2`` of shape ``(n, D)`` are compared:

- ``view_top1``: the share of first views whose nearest second view (cosine)
  is their own partner, among all ``n`` (chance: ``1 / n``);
- ``emb_std``: the per-dimension std of ``z1`` averaged, x sqrt(D)
  (:func:`~densecl_plugin.models.utils.health.embedding_std`; about 1 when
  spread on the sphere, 0 when collapsed);
- ``pos_cos`` and ``neg_cos``: the mean cosine of partners and of
  non-partners;
- ``alignment`` and ``uniformity`` (Wang & Isola 2020);
- ``feat_top1``: ``view_top1`` of the backbone's globally averaged C5
  features instead of the embeddings (what a downstream task inherits; the
  neck is dropped after pre-training).

BatchNorm runs in train mode by default (the statistics of the probe batch,
as during pre-training; a copy of the model, so its running statistics are
untouched), or in eval mode (``bn='eval'``, the running statistics).
"""
import copy
from typing import Any, Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from densecl_plugin.models.utils.health import (alignment, embedding_std,
                                                uniformity)

#: the probe's figures, in report order
METRICS = ('view_top1', 'feat_top1', 'emb_std', 'pos_cos', 'neg_cos',
           'alignment', 'uniformity')


def pick(paths: Sequence[str], num: int) -> List[str]:
    """``num`` paths evenly spaced over ``paths`` (all if fewer).

    Args:
        paths (Sequence[str]): e.g. the sorted files of an image folder.
        num (int): at least 2 (a retrieval needs two candidates).

    Returns:
        list[str]: ``paths[int(i * len(paths) / num)]`` for ``i < num``.
    """
    if num < 2:
        raise ValueError(f'--num must be at least 2, got {num}')
    if len(paths) <= num:
        return list(paths)
    step = len(paths) / num
    return [paths[int(i * step)] for i in range(num)]


def pair_metrics(z1: torch.Tensor, z2: torch.Tensor) -> Dict[str, float]:
    """The figures of embeddings ``z1[i], z2[i]`` of the views of image i.

    Args:
        z1 (Tensor): First views' embeddings ``(n, D)``, ``n >= 2``.
        z2 (Tensor): Second views' embeddings ``(n, D)``.

    Returns:
        dict[str, float]: :data:`METRICS`, and ``n`` and ``chance``
        (``1 / n``).
    """
    if z1.shape != z2.shape or z1.dim() != 2 or z1.shape[0] < 2:
        raise ValueError(f'pair_metrics needs two (n, D) embeddings with '
                         f'n >= 2, got {tuple(z1.shape)} and '
                         f'{tuple(z2.shape)}')
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    n = z1.shape[0]
    sim = z1 @ z2.t()  # nxn
    own = torch.eye(n, dtype=torch.bool)
    return dict(
        view_top1=float((sim.argmax(dim=1) == torch.arange(n)).float()
                        .mean()),
        emb_std=float(embedding_std(z1)),
        pos_cos=float(sim[own].mean()),
        neg_cos=float(sim[~own].mean()),
        alignment=float(alignment(z1, z2)),
        uniformity=float(uniformity(z1)),
        n=n, chance=1.0 / n)


@torch.no_grad()
def embed_view_pairs(model: nn.Module, cfg, images: Sequence[str],
                     seed: int = 0, bn: str = 'train'):
    """The query encoder's global embeddings of two views of each image.

    Args:
        model (nn.Module): A ``DenseCL`` or ``MoCoV2`` (anything with a data
            preprocessor, ``extract_feat`` and a neck whose first output is
            the global embedding).
        cfg (Config): The config whose train pipeline makes the views.
        images (Sequence[str]): Image paths.
        seed (int): View ``i`` is drawn with seed ``seed + i``. Defaults
            to 0.
        bn (str): ``'train'`` (batch statistics) or ``'eval'`` (running
            statistics). Defaults to ``'train'``.

    Returns:
        tuple[Tensor, Tensor, Tensor, Tensor]: ``z1, z2`` of shape
        ``(n, D)`` and the globally averaged C5 features ``f1, f2`` of shape
        ``(n, C)``.
    """
    from mmengine.dataset import pseudo_collate

    from densecl_plugin.apis.inference import make_views
    if bn not in ('train', 'eval'):
        raise ValueError(f"bn must be 'train' or 'eval', got {bn!r}")
    packs = [make_views(cfg, img, seed + i) for i, img in enumerate(images)]
    m = copy.deepcopy(model).train(bn == 'train')
    data = m.data_preprocessor(pseudo_collate(packs), False)
    v1, v2 = data['inputs'][0], data['inputs'][1]  # (n, 3, H, W) each
    c1, c2 = m.extract_feat(v1), m.extract_feat(v2)  # C5: (n, C, h, w)
    z1, z2 = m.neck(c1)[0], m.neck(c2)[0]  # nxD
    f1 = c1[-1].float().mean(dim=(2, 3))  # nxC
    f2 = c2[-1].float().mean(dim=(2, 3))  # nxC
    return z1, z2, f1, f2


def list_images(root: str) -> List[str]:
    """The sorted image files under ``root``, as
    :class:`~densecl_plugin.datasets.UnlabeledImageDataset` lists them
    (recursively; its errors name a missing folder or one without images)."""
    from densecl_plugin.datasets import UnlabeledImageDataset
    folder = UnlabeledImageDataset(data_root=root, pipeline=[])
    return sorted(folder.get_data_info(i)['img_path']
                  for i in range(len(folder)))


def folder_images(root: str, num: int) -> List[str]:
    """:func:`pick` ``num`` of :func:`list_images` ``(root)``."""
    return pick(list_images(root), num)


def probe_model(model: nn.Module, cfg, images: Sequence[str],
                seed: int = 0, bn: str = 'train') -> Dict[str, Any]:
    """:func:`pair_metrics` of ``model``'s embeddings, with ``feat_top1``
    (the ``view_top1`` of its pooled C5) added; see
    :func:`embed_view_pairs` for the arguments."""
    z1, z2, f1, f2 = embed_view_pairs(model, cfg, images, seed, bn)
    row = pair_metrics(z1, z2)
    row['feat_top1'] = pair_metrics(f1, f2)['view_top1']
    return row


def probe_checkpoints(config: str, checkpoints: Sequence[str],
                      images: Sequence[str], seed: int = 0,
                      bn: str = 'train') -> List[Dict[str, Any]]:
    """:func:`pair_metrics` of each checkpoint (``'random'``: the config's
    random init with torch seed 0) on the same views.

    Args:
        config (str): The pre-training config (model and views).
        checkpoints (Sequence[str]): Checkpoint files or ``'random'``.
        images (Sequence[str]): Image paths, at least two.
        seed (int): See :func:`embed_view_pairs`. Defaults to 0.
        bn (str): See :func:`embed_view_pairs`. Defaults to ``'train'``.

    Returns:
        list[dict]: One row per checkpoint: ``checkpoint``, the figures of
        :data:`METRICS`, ``n`` and ``chance``.
    """
    from densecl_plugin.apis.inference import build_model, load_config
    cfg = load_config(config)
    rows = []
    for ckpt in checkpoints:
        torch.manual_seed(0)
        model = build_model(cfg, ckpt)
        rows.append(dict(checkpoint=ckpt,
                         **probe_model(model, cfg, images, seed, bn)))
    return rows


def format_probe(rows: Sequence[Dict[str, Any]]) -> str:
    """A Markdown table of :func:`probe_checkpoints` rows."""
    head = '| checkpoint | ' + ' | '.join(METRICS) + ' |'
    lines = [head, '|' + '---|' * (len(METRICS) + 1)]
    for r in rows:
        lines.append(f"| {r['checkpoint']} | " + ' | '.join(
            f'{r[k]:.3f}' for k in METRICS) + ' |')
    if rows:
        lines.append(f"(n = {rows[0]['n']} held-out view pairs; view_top1 "
                     f"chance {rows[0]['chance']:.3f})")
    return '\n'.join(lines)
