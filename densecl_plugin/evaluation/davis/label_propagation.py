# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Semi-supervised video object segmentation by label propagation.

The protocol of CRW (Jabri et al., "Space-Time Correspondence as a
Contrastive Random Walk", NeurIPS 2020; ``ajabri/videowalk``), which SFC
(ECCV 2022) and others use to compare ImageNet-pre-trained ResNet-50s on
DAVIS-2017 val:

1. **Features**: res4 of the pre-trained ResNet (``layer4`` removed,
   ``layer3`` at stride 1, so stride 8; 1024-d for ResNet-50), L2-normalised
   per location, at the native 480p resolution, ImageNet mean/std on RGB.
2. **Labels**: the first frame's mask, one-hot per object id (background
   included), resized to the feature grid with bilinear interpolation
   (``cv2.resize``), i.e. soft labels.
3. **Propagation**, frame by frame: each query location ``q`` of frame t
   takes the ``topk`` most similar context locations (dot products / T,
   softmax over the top k) and averages their soft labels. The context is
   the first frame (ground truth, *not* radius-limited: videowalk's
   ``--long-mem 0``) plus the ``n_context`` preceding frames (their
   propagated labels; before frame ``n_context`` the missing frames are the
   first frame again, as videowalk pads the clip), where only locations
   closer than ``radius`` feature cells to ``q`` count.
4. **Output**: soft labels upsampled bilinearly to the frame size, argmax,
   written as palette PNGs.

Defaults are videowalk's DAVIS command: ``topk=10``, ``radius=12``,
``n_context=20``, ``temperature=0.05``.

Compute is dense but banded: for a block of query rows only the key rows
within ``radius`` are compared (the rest could never pass the radius test),
which halves the work of videowalk's full affinity at 480p, and blocks are
sized to a memory budget, so 480p runs fit a GPU and a CPU.
"""
import math
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import (annotation_paths, evaluate_folder, frame_paths,
                   list_sequences, read_mask, write_mask)

#: ImageNet statistics of RGB images in [0, 255]
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def res4_backbone_cfg(depth: int = 50) -> dict:
    """The CRW encoder as an mmdet ResNet: stages 1-3, ``layer3`` stride 1.

    ``num_stages=3`` drops ``layer4``; ``strides=(1, 2, 1)`` keeps layer3 at
    the resolution of layer2, so the output (``out_indices=(2, )``, res4) has
    stride 8 and the parameter names of a full torchvision ResNet.

    The encoder is frozen, and says so without relying on any default of
    mmdet's ResNet: ``frozen_stages=3`` (stem and layer1-3 stay in eval mode
    with ``requires_grad=False`` even after ``train()``), ``norm_eval=True``
    and a non-trainable BN; torchvision layout (``style='pytorch'``, 7x7
    stem, no ``avg_down``); ``zero_init_residual=False`` so that an
    ``init_weights()`` call would not turn the blocks into identities.

    Args:
        depth (int): ResNet depth. Defaults to 50.

    Returns:
        dict: a config for ``MODELS.build``.
    """
    return dict(type='mmdet.ResNet', depth=depth, num_stages=3,
                strides=(1, 2, 1), dilations=(1, 1, 1), out_indices=(2, ),
                style='pytorch', deep_stem=False, avg_down=False,
                frozen_stages=3, norm_eval=True,
                norm_cfg=dict(type='BN', requires_grad=False),
                zero_init_residual=False, init_cfg=None)


class Res4Encoder(nn.Module):
    """Wrap a backbone: normalised frames in, L2-normalised features out.

    Args:
        backbone (nn.Module): returns a feature map or a tuple whose last
            item is one.
        mean (Sequence[float]): RGB mean on the 0-255 scale. Defaults to
            ImageNet's.
        std (Sequence[float]): RGB std. Defaults to ImageNet's.
    """

    def __init__(self,
                 backbone: nn.Module,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1),
                             persistent=False)

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode frames.

        Args:
            frames (torch.Tensor): ``(N, 3, H, W)`` RGB in [0, 255].

        Returns:
            torch.Tensor: ``(N, C, h, w)`` features, unit norm over C.
        """
        x = (frames.float() - self.mean) / self.std  # (N, 3, H, W)
        feats = self.backbone(x)
        feats = feats[-1] if isinstance(feats, (tuple, list)) else feats
        return F.normalize(feats, dim=1)  # (N, C, h, w)


def build_res4_encoder(backbone: Optional[dict] = None,
                       checkpoint: Optional[str] = None,
                       device: str = 'cpu') -> Res4Encoder:
    """Build the encoder and load pre-trained weights.

    Args:
        backbone (dict, optional): backbone config. Defaults to
            :func:`res4_backbone_cfg` (ResNet-50).
        checkpoint (str, optional): any checkpoint layout that
            :func:`~densecl_plugin.evaluation.load_pretrained_backbone` takes
            (``layer4.*`` and heads are skipped). Defaults to None: the
            layers keep PyTorch's default init, a random baseline (mmdet's
            ``init_weights`` would zero the last BN of every residual
            branch, making the blocks identities).
        device (str): Defaults to ``'cpu'``.

    Returns:
        Res4Encoder: in eval mode.
    """
    from densecl_plugin.registry import MODELS
    from ..pretrained_backbone import load_pretrained_backbone
    net = MODELS.build(backbone or res4_backbone_cfg())
    if checkpoint:
        load_pretrained_backbone(net, checkpoint)
    return Res4Encoder(net).to(device).eval()


@torch.no_grad()
def extract_features(encoder: nn.Module,
                     frames: Sequence[np.ndarray],
                     batch_size: int = 5,
                     device: str = 'cpu') -> torch.Tensor:
    """Features of all frames of a clip.

    Args:
        encoder (nn.Module): RGB ``(N, 3, H, W)`` in [0, 255] -> ``(N, C, h,
            w)`` (e.g. :class:`Res4Encoder`).
        frames (Sequence[np.ndarray]): ``(H, W, 3)`` uint8 RGB frames.
        batch_size (int): frames per forward. Defaults to 5.
        device (str): Defaults to ``'cpu'``.

    Returns:
        torch.Tensor: ``(N, C, h, w)`` on ``device``.
    """
    feats = []
    for i in range(0, len(frames), batch_size):
        batch = torch.from_numpy(np.stack(frames[i:i + batch_size]))
        batch = batch.permute(0, 3, 1, 2).to(device)  # (B, 3, H, W)
        feats.append(encoder(batch))  # (B, C, h, w)
    return torch.cat(feats)  # (N, C, h, w)


def downsample_labels(mask: np.ndarray, label_ids: Sequence[int],
                      size: Tuple[int, int]) -> torch.Tensor:
    """Soft one-hot labels of a mask on the feature grid.

    Args:
        mask (np.ndarray): ``(H, W)`` object ids.
        label_ids (Sequence[int]): the ids, in channel order.
        size (tuple[int, int]): ``(h, w)`` of the feature grid.

    Returns:
        torch.Tensor: ``(L, h, w)`` float32, bilinearly resized one-hot maps
        (``cv2.resize``, as videowalk).
    """
    h, w = size
    onehot = [(mask == i).astype(np.float32) for i in label_ids]  # L x (H, W)
    small = [cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
             for m in onehot]  # L x (h, w)
    return torch.from_numpy(np.stack(small))  # (L, h, w)


def context_indices(t: int, n_context: int) -> List[int]:
    """Short-term context frames of target frame ``t``.

    Args:
        t (int): the target frame (>= 1).
        n_context (int): number of preceding frames.

    Returns:
        list[int]: ``t - n_context .. t - 1``, clamped at 0 (frame 0 stands
        in for frames before the clip, as videowalk's padding).
    """
    return [max(0, t - n_context + i) for i in range(n_context)]


def _rows_per_block(h: int, w: int, reach: int, n_context: int,
                    max_elements: int, target_queries: int = 512) -> int:
    """Query rows per block: about ``target_queries`` queries, fewer if the
    affinity block would exceed ``max_elements``.

    Small blocks waste less of the key band (``rows + 2 * reach`` rows for
    ``rows`` query rows); ~512 queries keep the matrix products efficient.
    """
    rows = min(h, max(1, math.ceil(target_queries / w)))
    while rows > 1:
        band = min(h, rows + 2 * reach) * w
        if rows * w * (h * w + n_context * band) <= max_elements:
            break
        rows = max(1, rows // 2)
    return rows


@torch.no_grad()
def propagate_labels(feats: torch.Tensor,
                     first_labels: torch.Tensor,
                     topk: int = 10,
                     radius: Optional[float] = 12,
                     n_context: int = 20,
                     temperature: float = 0.05,
                     max_elements: int = 2**26) -> torch.Tensor:
    """Propagate the first frame's soft labels through a clip.

    Args:
        feats (torch.Tensor): ``(N, C, h, w)`` L2-normalised features.
        first_labels (torch.Tensor): ``(L, h, w)`` soft labels of frame 0.
        topk (int): neighbours per query. Defaults to 10.
        radius (float, optional): short-term context locations must be
            closer than this (in feature cells, Euclidean); None for no
            limit. The first frame is never limited. Defaults to 12.
        n_context (int): preceding frames in the context. Defaults to 20.
        temperature (float): softmax temperature T. Defaults to 0.05.
        max_elements (int): budget of affinity entries per block (memory is
            about 4 bytes each, times ~3). Defaults to ``2**26``.

    Returns:
        torch.Tensor: ``(N, L, h, w)`` soft labels; frame 0 is
        ``first_labels``.
    """
    N, C, h, w = feats.shape
    L = first_labels.shape[0]
    hw = h * w
    if first_labels.shape[1:] != (h, w):
        raise ValueError(f'first_labels is {tuple(first_labels.shape)}, the '
                         f'feature grid is {(h, w)}')
    if not 1 <= topk <= hw:
        raise ValueError(f'topk must be in [1, {hw}] (the first frame has '
                         f'{hw} locations), got {topk}')
    if temperature <= 0 or n_context < 0:
        raise ValueError(f'need temperature > 0 and n_context >= 0, got '
                         f'{temperature} and {n_context}')
    device = feats.device
    k_all = feats.flatten(2)  # (N, C, hw) keys (and queries)
    labels = feats.new_zeros(N, L, hw)  # (N, L, hw) soft labels
    labels[0] = first_labels.to(device).flatten(1)
    reach = h if radius is None else max(0, math.ceil(radius) - 1)
    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    rows = _rows_per_block(h, w, reach, n_context, max_elements)
    for t in range(1, N):
        ctx = context_indices(t, n_context)
        k_long, lbl_long = k_all[0], labels[0]  # (C, hw), (L, hw)
        k_short, lbl_short = k_all[ctx], labels[ctx]  # (n, C, hw), (n, L, hw)
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            b0, b1 = max(0, r0 - reach), min(h, r1 + reach)
            q = k_all[t][:, r0 * w:r1 * w]  # (C, Q) queries
            A_long = q.t() @ k_long  # (Q, hw)
            k_band = k_short[:, :, b0 * w:b1 * w]  # (n, C, B)
            B = k_band.shape[-1]
            A_short = q.t() @ k_band.permute(1, 0, 2).reshape(C, -1)  # (Q, nB)
            if radius is not None and n_context:
                dy = ys[r0:r1, None] - ys[None, b0:b1]  # (Qr, Br)
                dx = xs[:, None] - xs[None, :]  # (w, w)
                d2 = dy[:, None, :, None]**2 + dx[None, :, None, :]**2
                far = (d2 >= radius**2).reshape(r1 * w - r0 * w, 1, B)
                A_short = A_short.view(-1, len(ctx), B).masked_fill(
                    far, float('-inf')).flatten(1)  # (Q, nB)
            A = torch.cat([A_long, A_short], dim=1) / temperature  # (Q, hw+nB)
            w_top, i_top = A.topk(topk, dim=1)  # (Q, k), (Q, k)
            w_top = w_top.softmax(dim=1)  # (Q, k)
            lbl_bank = torch.cat(
                [lbl_long, lbl_short[:, :, b0 * w:b1 * w].permute(
                    1, 0, 2).reshape(L, -1)], dim=1)  # (L, hw+nB)
            labels[t, :, r0 * w:r1 * w] = (
                lbl_bank[:, i_top] * w_top[None]).sum(-1)  # (L, Q)
    return labels.view(N, L, h, w)


def soft_labels_to_mask(soft: torch.Tensor, label_ids: Sequence[int],
                        size: Tuple[int, int]) -> np.ndarray:
    """Upsample soft labels bilinearly and take the argmax.

    Args:
        soft (torch.Tensor): ``(L, h, w)`` soft labels.
        label_ids (Sequence[int]): object id of each channel.
        size (tuple[int, int]): output ``(H, W)``.

    Returns:
        np.ndarray: ``(H, W)`` uint8 object ids.
    """
    up = F.interpolate(soft[None].float(), size=size, mode='bilinear',
                       align_corners=False)[0]  # (L, H, W)
    ids = torch.as_tensor(list(label_ids), dtype=torch.uint8,
                          device=up.device)
    return ids[up.argmax(0)].cpu().numpy()  # (H, W)


def _read_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read frame {path}')
    return np.ascontiguousarray(img[..., ::-1])  # (H, W, 3) RGB


def propagate_sequence(encoder: nn.Module,
                       frames: Sequence[np.ndarray],
                       first_mask: np.ndarray,
                       topk: int = 10,
                       radius: Optional[float] = 12,
                       n_context: int = 20,
                       temperature: float = 0.05,
                       batch_size: int = 5,
                       device: str = 'cpu') -> List[np.ndarray]:
    """Segment every frame of a clip from its first-frame mask.

    Args:
        encoder (nn.Module): see :func:`extract_features`.
        frames (Sequence[np.ndarray]): ``(H, W, 3)`` uint8 RGB frames.
        first_mask (np.ndarray): ``(H, W)`` object ids of frame 0 (255,
            void, counts as background).
        topk, radius, n_context, temperature: see :func:`propagate_labels`.
        batch_size (int): frames per encoder forward. Defaults to 5.
        device (str): Defaults to ``'cpu'``.

    Returns:
        list[np.ndarray]: ``(H, W)`` uint8 masks; the first is
        ``first_mask`` itself.
    """
    H, W = frames[0].shape[:2]
    if first_mask.shape != (H, W):
        raise ValueError(f'first mask is {first_mask.shape}, frames are '
                         f'{(H, W)}')
    first_mask = np.where(first_mask == 255, 0, first_mask).astype(np.uint8)
    label_ids = sorted(set(np.unique(first_mask).tolist()) | {0})
    feats = extract_features(encoder, frames, batch_size, device)
    first = downsample_labels(first_mask, label_ids, feats.shape[-2:])
    soft = propagate_labels(feats, first, topk, radius, n_context,
                            temperature)  # (N, L, h, w)
    masks = [first_mask]
    masks += [soft_labels_to_mask(s, label_ids, (H, W)) for s in soft[1:]]
    return masks


def run_davis(encoder: nn.Module,
              davis_root: str,
              out_dir: str,
              sequences: Optional[Sequence[str]] = None,
              split: str = 'val',
              resolution: str = '480p',
              topk: int = 10,
              radius: Optional[float] = 12,
              n_context: int = 20,
              temperature: float = 0.05,
              batch_size: int = 5,
              device: str = 'cpu',
              evaluate: bool = True,
              logger=None) -> Dict[str, object]:
    """Propagate the first-frame masks of DAVIS sequences and score them.

    Predictions are written to ``<out_dir>/Annotations/<resolution>/<seq>/
    <frame>.png`` (palette PNGs), which the official ``davis2017-evaluation``
    reads with ``--results_path <out_dir>/Annotations/<resolution>``.

    Args:
        encoder (nn.Module): see :func:`extract_features`.
        davis_root (str): the DAVIS-2017 root.
        out_dir (str): where predictions (and nothing else) are written.
        sequences (Sequence[str], optional): sequences to run. Defaults to
            those of ``ImageSets/2017/<split>.txt``.
        split (str): Defaults to ``'val'``.
        resolution (str): Defaults to ``'480p'``.
        topk, radius, n_context, temperature: see :func:`propagate_labels`.
        batch_size (int): frames per encoder forward. Defaults to 5.
        device (str): Defaults to ``'cpu'``.
        evaluate (bool): compute J&F against ``Annotations``. Defaults to
            True.
        logger (optional): an ``mmengine`` logger name or object for
            progress lines. Defaults to None (print).

    Returns:
        dict: ``sequences``, ``frames``, ``seconds`` (propagation wall time)
        and, when ``evaluate``, ``global_row`` and ``per_object`` (see
        :func:`~densecl_plugin.evaluation.davis.metrics.summarise`).
    """
    from mmengine.logging import print_log
    seqs = list(sequences) if sequences else list_sequences(davis_root, split)
    n_frames, start = 0, time.perf_counter()
    for i, seq in enumerate(seqs):
        paths = frame_paths(davis_root, seq, resolution)
        first_gt = annotation_paths(davis_root, seq, resolution)[0]
        frames = [_read_rgb(p) for p in paths]
        t0 = time.perf_counter()
        masks = propagate_sequence(encoder, frames, read_mask(first_gt), topk,
                                   radius, n_context, temperature, batch_size,
                                   device)
        for p, m in zip(paths, masks):
            name = osp.splitext(osp.basename(p))[0] + '.png'
            write_mask(osp.join(out_dir, 'Annotations', resolution, seq,
                                name), m)
        n_frames += len(frames)
        print_log(f'[{i + 1}/{len(seqs)}] {seq}: {len(frames)} frames in '
                  f'{time.perf_counter() - t0:.1f} s', logger=logger)
    result = dict(sequences=seqs, frames=n_frames,
                  seconds=time.perf_counter() - start)
    if evaluate:
        result.update(evaluate_folder(davis_root, out_dir, seqs, resolution))
    return result
