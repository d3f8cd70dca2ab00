# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Linear probe of a frozen backbone on a small real labeled set.

Data: scikit-image's ``lfw_subset()`` (ships in the scikit-image wheel the
demo already needs, loads offline): 200 real 25 x 25 grey photos, the first
100 faces (Labeled Faces in the Wild), the last 100 non-face patches.
Images are upsampled to the pre-training view size and given three
channels; the backbone's C5 map is average-pooled to one vector; a
multinomial logistic regression (L2, full-batch L-BFGS, features
standardised on the training folds) is scored by stratified k-fold
cross-validation with a fixed fold assignment.
"""
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: what the probe's data is called in the report
PROBE_DATA = 'scikit-image lfw_subset (100 faces / 100 non-faces, 25 px)'


def probe_data(max_images: Optional[int] = None, seed: int = 0
               ) -> Tuple[np.ndarray, np.ndarray]:
    """The probe's images ``(N, 25, 25)`` in [0, 1] and labels (1 = face).

    Args:
        max_images (int, optional): keep this many, half of each class
            (a fixed random choice). Defaults to None (all 200).
        seed (int): seed of that choice. Defaults to 0.
    """
    from skimage.data import lfw_subset
    images = lfw_subset().astype(np.float32)
    labels = np.array([1] * 100 + [0] * 100, dtype=np.int64)
    if max_images:
        rng = np.random.RandomState(seed)
        keep = np.concatenate([
            rng.permutation(np.flatnonzero(labels == c))[:max_images // 2]
            for c in (1, 0)])
        images, labels = images[np.sort(keep)], labels[np.sort(keep)]
    return images, labels


@torch.no_grad()
def pooled_features(model: nn.Module, images: np.ndarray, size: int,
                    mean: Sequence[float], std: Sequence[float],
                    batch_size: int = 50) -> torch.Tensor:
    """Average-pooled C5 features ``(N, C)`` of grey ``images`` in [0, 1].

    Args:
        model (nn.Module): a model with ``backbone`` (eval mode is set).
        images (np.ndarray): ``(N, H, W)``.
        size (int): images are resized (bilinear) to ``size`` px.
        mean (Sequence[float]): per-channel mean on the 0-255 scale (the
            pre-training data preprocessor's).
        std (Sequence[float]): per-channel std, alike.
        batch_size (int): Defaults to 50.
    """
    from densecl_plugin.models.utils.feature_map import last_feature_map
    model.eval()
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    feats = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size])[:, None] * 255.0
        x = F.interpolate(x, size=(size, size), mode='bilinear',
                          align_corners=False).expand(-1, 3, -1, -1)
        c5 = last_feature_map(model.backbone((x - m) / s),
                              type(model).__name__)  # (B, C, h, w)
        feats.append(c5.float().mean(dim=(2, 3)))
    return torch.cat(feats)


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0
                     ) -> np.ndarray:
    """A fold index per sample: each class shuffled, dealt round-robin."""
    rng = np.random.RandomState(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = np.arange(len(idx)) % folds
    return fold


def fit_lbfgs(module: nn.Module, logits: Callable[[], torch.Tensor],
              targets: torch.Tensor, weight: torch.Tensor,
              weight_decay: float, max_iter: int) -> None:
    """Minimise ``CE(logits(), targets) + weight_decay * ||weight||^2`` over
    ``module``'s parameters: one full-batch L-BFGS step (``max_iter``
    iterations, strong Wolfe line search), in place, gradients enabled even
    inside ``no_grad``.

    Args:
        module (nn.Module): whose parameters are fitted.
        logits (Callable[[], Tensor]): computes the logits ``(N, K, ...)``.
        targets (Tensor): int64 class indices ``(N, ...)``.
        weight (Tensor): the penalised parameter (the bias is not).
        weight_decay (float): the L2 factor.
        max_iter (int): L-BFGS iterations.
    """
    opt = torch.optim.LBFGS(module.parameters(), lr=1.0, max_iter=max_iter,
                            line_search_fn='strong_wolfe')

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits(), targets) + \
            weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)


def logistic_regression(x: torch.Tensor, y: torch.Tensor,
                        num_classes: int, weight_decay: float = 1e-3,
                        max_iter: int = 200) -> nn.Linear:
    """Fit an L2-regularised multinomial logistic regression (L-BFGS)."""
    torch.manual_seed(0)
    layer = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    fit_lbfgs(layer, lambda: layer(x), y, layer.weight, weight_decay,
              max_iter)
    return layer


def linear_probe(features: torch.Tensor, labels: np.ndarray,
                 folds: int = 5, seed: int = 0,
                 weight_decay: float = 1e-3) -> Dict[str, Any]:
    """Stratified ``folds``-fold accuracy of a linear classifier.

    Returns:
        dict: ``accuracy`` (mean over folds, in [0, 1]), ``fold_accuracy``.
    """
    y_all = torch.from_numpy(labels)
    fold = stratified_folds(labels, folds, seed)
    accs = []
    for k in range(folds):
        train, test = fold != k, fold == k
        x_tr, x_te = features[train], features[test]
        mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
        layer = logistic_regression((x_tr - mu) / sd, y_all[train],
                                    int(labels.max()) + 1, weight_decay)
        with torch.no_grad():
            pred = layer((x_te - mu) / sd).argmax(1)
        accs.append(float((pred == y_all[test]).float().mean()))
    return dict(accuracy=float(np.mean(accs)), fold_accuracy=accs)
