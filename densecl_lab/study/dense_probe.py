# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Frozen-feature dense probe: a per-pixel linear classifier on C4 and C5.

A frozen backbone's C4 (stride 16) and C5 (stride 32) maps are each given a
1x1 convolution, i.e. a multinomial logistic regression per pixel, trained
on two real labelled sets of the demo data:

- ``nuclei``: the stardist tiles (``nuclei/img_dir`` + ``ann_dir``),
  background / nucleus, with the FCN fine-tuning split (``train`` /
  ``val``);
- ``trees``: the deepforest tiles (``VOCdevkit``), a pixel is 1 when it lies
  inside any tree-crown box, else 0 (:func:`boxes_mask`), with the Faster
  R-CNN split (VOC2007 + VOC2012 ``trainval`` / VOC2007 ``test``).

Images are resized (bilinear) to ``size`` x ``size`` and normalised with
the model's data preprocessor mean / std; masks are resized with nearest
neighbour to the same ``size`` x ``size`` label grid. BatchNorm uses its
running statistics (eval mode, as :mod:`.probe`). Features are standardised
per channel on the training split; the classifier's logits on the feature
grid are bilinearly upsampled to the label grid (the same as classifying
bilinearly upsampled features: both maps are linear) and trained on every
label pixel with a mean cross-entropy plus an L2 penalty on the weights,
full-batch L-BFGS from zeros for a fixed number of iterations
(deterministic). Scores on the validation split: mIoU over the two classes
and pixel accuracy, counted over all its pixels (:func:`segmentation_scores`).
"""
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from densecl_lab.data_prep.sources import parse_voc_xml, read_rgb
from .probe import fit_lbfgs

#: the probe's sets: name -> what the report calls it
DENSE_SETS = {
    'nuclei': 'stardist nuclei tiles, nucleus vs background (the FCN '
              'fine-tuning split)',
    'trees': 'deepforest tiles, pixels inside a tree-crown box vs the rest '
             '(the Faster R-CNN split)',
}
#: the probed levels: name -> ResNet stage index (``out_indices``)
LEVELS = {'C4': 2, 'C5': 3}
#: the L2 penalty on the classifier weights
WEIGHT_DECAY = 1e-3
#: what a change of the probe's method bumps (part of its fingerprint)
DENSE_PROBE_VERSION = 1


# labels ---------------------------------------------------------------------
def boxes_mask(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``(height, width)`` uint8 mask of the pixels inside any box.

    Args:
        boxes (np.ndarray): ``(N, 4)`` boxes ``x1, y1, x2, y2`` in pixel
            edges: pixel ``(r, c)`` (centre ``c + 0.5, r + 0.5``) is inside
            when ``x1 <= c + 0.5 < x2`` and ``y1 <= r + 0.5 < y2``.
        height (int): mask rows.
        width (int): mask columns.

    Returns:
        np.ndarray: 1 inside a box, 0 elsewhere.
    """
    mask = np.zeros((height, width), np.uint8)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        c0, c1 = max(int(np.ceil(x1 - 0.5)), 0), int(np.ceil(x2 - 0.5))
        r0, r1 = max(int(np.ceil(y1 - 0.5)), 0), int(np.ceil(y2 - 0.5))
        mask[r0:max(r1, r0), c0:max(c1, c0)] = 1
    return mask


def read_voc_boxes(xml_file: str) -> Tuple[np.ndarray, int, int]:
    """A VOC annotation's boxes in pixel edges, and the image size.

    VOC corners are 1-based and inclusive, so ``xmin .. xmax`` covers the
    pixel edges ``xmin - 1 .. xmax``.

    Returns:
        tuple[np.ndarray, int, int]: ``(N, 4)`` float32 boxes, height,
        width.
    """
    (width, height), boxes, _ = parse_voc_xml(xml_file)
    boxes[:, :2] -= 1  # 1-based inclusive corners -> pixel edges
    return boxes, height, width


# data -----------------------------------------------------------------------
def split_files(manifest: Dict[str, Any], name: str
                ) -> Dict[str, List[Tuple[str, str]]]:
    """``(image, label)`` file pairs of ``train`` and ``val`` of one set.

    Args:
        manifest (dict): the demo data manifest
            (:func:`~densecl_lab.demo.data.prepare_demo_data`).
        name (str): ``'nuclei'`` (label: the 0/1 mask PNG) or ``'trees'``
            (label: the VOC XML).
    """
    if name == 'nuclei':
        root = manifest['segmentation']['data_root']
        out = {}
        for split in ('train', 'val'):
            img_dir = osp.join(root, 'img_dir', split)
            out[split] = [(osp.join(img_dir, f),
                           osp.join(root, 'ann_dir', split, f))
                          for f in sorted(os.listdir(img_dir))]
        return out
    if name == 'trees':
        root = manifest['detection']['data_root']
        parts = dict(train=('VOC2007/trainval', 'VOC2012/trainval'),
                     val=('VOC2007/test', ))
        out = {}
        for split, subsets in parts.items():
            pairs = []
            for subset in subsets:
                year, ids = subset.split('/')
                with open(osp.join(root, year, 'ImageSets', 'Main',
                                   f'{ids}.txt')) as f:
                    stems = [s.strip() for s in f if s.strip()]
                pairs += [(osp.join(root, year, 'JPEGImages', f'{s}.jpg'),
                           osp.join(root, year, 'Annotations', f'{s}.xml'))
                          for s in stems]
            out[split] = pairs
        return out
    raise ValueError(f'unknown dense probe set {name!r}; expected one of '
                     f'{sorted(DENSE_SETS)}')


def load_pairs(pairs: Sequence[Tuple[str, str]], size: int
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Images and masks of ``(image, label)`` pairs, resized.

    Args:
        pairs (Sequence[tuple[str, str]]): image file and a mask PNG
            (values 0 / 1) or a VOC XML (:func:`boxes_mask`).
        size (int): images (bilinear) and masks (nearest) are resized to
            ``size`` x ``size``.

    Returns:
        tuple[np.ndarray, np.ndarray]: RGB images ``(N, size, size, 3)``
        uint8 and masks ``(N, size, size)`` int64.
    """
    import cv2
    images, masks = [], []
    for img_file, label_file in pairs:
        img = read_rgb(img_file)  # HxWx3 RGB uint8
        if label_file.endswith('.xml'):
            boxes, h, w = read_voc_boxes(label_file)
            mask = boxes_mask(boxes, h, w)
        else:
            mask = cv2.imread(label_file, cv2.IMREAD_UNCHANGED)
            if mask is None:
                raise FileNotFoundError(f'could not read mask {label_file!r}')
        if mask.shape[:2] != img.shape[:2]:
            raise ValueError(f'{label_file}: mask {mask.shape[:2]} does not '
                             f'match image {img.shape[:2]}')
        images.append(cv2.resize(img, (size, size),
                                 interpolation=cv2.INTER_LINEAR))
        masks.append(cv2.resize(mask, (size, size),
                                interpolation=cv2.INTER_NEAREST))
    return (np.stack(images),
            np.stack(masks).astype(np.int64))


def dense_probe_data(manifest: Dict[str, Any], name: str, size: int,
                     max_images: Optional[int] = None
                     ) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``train`` and ``val`` images and masks of one set (see
    :func:`split_files` and :func:`load_pairs`).

    Args:
        manifest (dict): the demo data manifest.
        name (str): a key of :data:`DENSE_SETS`.
        size (int): the input and label grid side.
        max_images (int, optional): the first this many of each split.
            Defaults to None (all).
    """
    return {split: load_pairs(pairs[:max_images] if max_images else pairs,
                              size)
            for split, pairs in split_files(manifest, name).items()}


# features -------------------------------------------------------------------
@torch.no_grad()
def level_features(model: nn.Module, images: np.ndarray,
                   mean: Sequence[float], std: Sequence[float],
                   levels: Sequence[str] = tuple(LEVELS),
                   to_rgb: bool = True, batch_size: int = 16
                   ) -> Dict[str, torch.Tensor]:
    """The frozen backbone's maps at ``levels`` (eval-mode BN).

    Args:
        model (nn.Module): a model whose ``backbone`` has ``out_indices``
            (``mmdet.ResNet``; it is restored afterwards).
        images (np.ndarray): RGB ``(N, H, W, 3)`` uint8.
        mean (Sequence[float]): per-channel mean on the 0-255 scale (the
            data preprocessor's, in its channel order).
        std (Sequence[float]): per-channel std, alike.
        levels (Sequence[str]): keys of :data:`LEVELS`. Defaults to all.
        to_rgb (bool): the preprocessor's channel order is RGB (else BGR).
            Defaults to True.
        batch_size (int): Defaults to 16.

    Returns:
        dict[str, Tensor]: level -> float32 ``(N, C, h, w)``.
    """
    backbone = model.backbone
    if not hasattr(backbone, 'out_indices'):
        raise TypeError(f'{type(backbone).__name__} has no out_indices; '
                        'the dense probe needs a ResNet backbone')
    model.eval()
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    old = backbone.out_indices
    backbone.out_indices = tuple(LEVELS[lv] for lv in levels)
    out: Dict[str, List[torch.Tensor]] = {lv: [] for lv in levels}
    try:
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(images[i:i + batch_size]).float()
            x = x.permute(0, 3, 1, 2)  # (B, 3, H, W) RGB
            if not to_rgb:
                x = x.flip(1)
            maps = backbone(((x - m) / s).contiguous())
            for lv, fmap in zip(levels, maps):
                out[lv].append(fmap.float().contiguous())  # (B, C, h, w)
    finally:
        backbone.out_indices = old
    return {lv: torch.cat(v) for lv, v in out.items()}


# the classifier -------------------------------------------------------------
class PixelClassifier(nn.Module):
    """A 1x1 convolution on standardised features, its logits upsampled.

    Args:
        mean (Tensor): per-channel feature mean ``(C, )``.
        std (Tensor): per-channel feature std ``(C, )``.
        num_classes (int): K.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor,
                 num_classes: int) -> None:
        super().__init__()
        self.register_buffer('mean', mean.view(1, -1, 1, 1))
        self.register_buffer('std', std.view(1, -1, 1, 1))
        self.conv = nn.Conv2d(mean.numel(), num_classes, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, feats: torch.Tensor,
                size: Tuple[int, int]) -> torch.Tensor:
        """Logits ``(N, K, H, W)`` at ``size = (H, W)`` of features
        ``(N, C, h, w)`` (bilinear, ``align_corners=False``)."""
        logits = self.conv((feats - self.mean) / self.std)  # (N, K, h, w)
        if tuple(logits.shape[-2:]) == tuple(size):
            return logits
        return F.interpolate(logits, size=size, mode='bilinear',
                             align_corners=False)

    @torch.no_grad()
    def predict(self, feats: torch.Tensor,
                size: Tuple[int, int]) -> torch.Tensor:
        """The arg-max class ``(N, H, W)``."""
        return self(feats, size).argmax(dim=1)


def fit_pixel_classifier(feats: torch.Tensor, labels: torch.Tensor,
                         num_classes: int = 2,
                         weight_decay: float = WEIGHT_DECAY,
                         max_iter: int = 100) -> PixelClassifier:
    """Fit :class:`PixelClassifier` by full-batch L-BFGS from zeros.

    Minimises the mean cross-entropy over every label pixel plus
    ``weight_decay * ||W||^2`` (the bias is not penalised), features
    standardised per channel over all training positions.

    Args:
        feats (Tensor): training features ``(N, C, h, w)``.
        labels (Tensor): int64 labels ``(N, H, W)`` in ``[0, K)``.
        num_classes (int): K. Defaults to 2.
        weight_decay (float): Defaults to :data:`WEIGHT_DECAY`.
        max_iter (int): L-BFGS iterations (one ``step``, strong Wolfe line
            search). Defaults to 100.

    Returns:
        PixelClassifier: the fitted classifier.
    """
    feats = feats.float()
    mean = feats.mean(dim=(0, 2, 3))  # (C, )
    std = feats.std(dim=(0, 2, 3)) + 1e-6  # (C, )
    clf = PixelClassifier(mean, std, num_classes)
    size = tuple(labels.shape[-2:])
    fit_lbfgs(clf.conv, lambda: clf(feats, size), labels, clf.conv.weight,
              weight_decay, max_iter)
    return clf


def segmentation_scores(pred: torch.Tensor, labels: torch.Tensor,
                        num_classes: int = 2) -> Dict[str, Any]:
    """IoU per class, mIoU and pixel accuracy over all pixels.

    Args:
        pred (Tensor): predicted classes, any shape.
        labels (Tensor): true classes, the same shape.
        num_classes (int): K. Defaults to 2.

    Returns:
        dict: ``iou`` (list of K, None for a class absent from both),
        ``mIoU`` (mean over the present classes) and ``pixel_acc``, in
        [0, 1].
    """
    pred, labels = pred.reshape(-1).long(), labels.reshape(-1).long()
    conf = torch.bincount(labels * num_classes + pred,
                          minlength=num_classes ** 2).view(
                              num_classes, num_classes)  # true x pred
    inter = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - inter
    iou = [float(i / u) if u > 0 else None for i, u in zip(inter, union)]
    present = [v for v in iou if v is not None]
    return dict(iou=iou,
                mIoU=float(np.mean(present)) if present else None,
                pixel_acc=float(inter.sum() / max(labels.numel(), 1)))


# the whole probe ------------------------------------------------------------
def dense_probe(model: nn.Module, manifest: Dict[str, Any], size: int,
                mean: Sequence[float], std: Sequence[float],
                to_rgb: bool = True, max_images: Optional[int] = None,
                max_iter: int = 100, weight_decay: float = WEIGHT_DECAY
                ) -> Dict[str, Any]:
    """The dense probe of a frozen backbone on every set and level.

    Args:
        model (nn.Module): a model with a ResNet ``backbone``.
        manifest (dict): the demo data manifest.
        size (int): input and label grid side (e.g. 160: C4 10 x 10, C5
            5 x 5).
        mean (Sequence[float]): the data preprocessor's mean (0-255).
        std (Sequence[float]): its std.
        to_rgb (bool): the preprocessor wants RGB. Defaults to True.
        max_images (int, optional): the first this many of each split.
            Defaults to None (all).
        max_iter (int): L-BFGS iterations. Defaults to 100.
        weight_decay (float): Defaults to :data:`WEIGHT_DECAY`.

    Returns:
        dict: ``sets``: name -> ``num_train``, ``num_val``, ``foreground``
        (the share of 1-pixels in train / val), and per level ``grid``
        ``[h, w]``, ``mIoU``, ``iou``, ``pixel_acc`` on val and
        ``train_mIoU``.
    """
    out: Dict[str, Any] = {}
    for name in DENSE_SETS:
        data = dense_probe_data(manifest, name, size, max_images)
        (x_tr, y_tr), (x_va, y_va) = data['train'], data['val']
        f_tr = level_features(model, x_tr, mean, std, to_rgb=to_rgb)
        f_va = level_features(model, x_va, mean, std, to_rgb=to_rgb)
        y_tr_t, y_va_t = torch.from_numpy(y_tr), torch.from_numpy(y_va)
        res: Dict[str, Any] = dict(
            num_train=len(y_tr), num_val=len(y_va),
            foreground=dict(train=float(y_tr.mean()), val=float(y_va.mean())))
        for lv in LEVELS:
            clf = fit_pixel_classifier(f_tr[lv], y_tr_t, 2, weight_decay,
                                       max_iter)
            val = segmentation_scores(clf.predict(f_va[lv], (size, size)),
                                      y_va_t)
            train = segmentation_scores(clf.predict(f_tr[lv], (size, size)),
                                        y_tr_t)
            res[lv] = dict(grid=list(f_tr[lv].shape[-2:]), **val,
                           train_mIoU=train['mIoU'])
        out[name] = res
    return dict(sets=out, size=size, levels=list(LEVELS),
                max_iter=max_iter, weight_decay=weight_decay)
