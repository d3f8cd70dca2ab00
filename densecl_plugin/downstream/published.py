# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Published downstream numbers of DenseCL and MoCo v2 (ResNet-50,
ImageNet-1k pre-training, 200 epochs), to print next to our results.

Every number names its source. ``verified=False`` marks numbers recalled
from the DenseCL paper's tables that no stored source confirmed; they are
printed with a ``?``. Protocols differ between sources (detectron2 vs
mmdet, 5-trial means vs single runs), so the ``protocol`` field says which.
"""
from dataclasses import dataclass
from typing import Dict, List


@dataclass(frozen=True)
class Published:
    """One published number.

    Attributes:
        method (str): ``'DenseCL'`` or ``'MoCo v2'``.
        metric (str): our column name (``'AP'``, ``'AP50'``, ``'mIoU'`` ...).
        value (float): the number, in percent.
        source (str): where it is stated.
        protocol (str): how it was measured.
        verified (bool): whether a stored source confirms it.
    """
    method: str
    metric: str
    value: float
    source: str
    protocol: str
    verified: bool = True


_README = 'WXinlong/DenseCL README'
_ZOO = 'WXinlong/DenseCL docs/MODEL_ZOO.md'
_MMSS = 'mmselfsup 1.x configs/selfsup/{densecl,mocov2}/README.md'
_PAPER = 'DenseCL paper (arXiv 2011.09157), recalled, not re-checked'
_D2_5 = 'detectron2, mean of 5 trials'
_D2 = 'detectron2'
_MMDET = 'mmdet / mmseg (mmselfsup)'

#: benchmark name (see :data:`~.transfer.BENCHMARKS`) -> published numbers
PUBLISHED: Dict[str, List[Published]] = {
    'voc0712-c4-24k': [
        Published('DenseCL', 'AP', 58.7, _README, _D2_5),
        Published('MoCo v2', 'AP', 57.0, _README, _D2_5),
        Published('MoCo v2', 'AP50', 82.24, _ZOO, _D2),
        Published('MoCo v2', 'AP75', 63.43, _ZOO, _D2),
        Published('DenseCL', 'AP50', 82.14, _MMSS, _MMDET),
        Published('MoCo v2', 'AP50', 81.06, _MMSS, _MMDET),
    ],
    'coco-fpn-1x': [
        Published('MoCo v2', 'APbb', 40.2, _MMSS, _MMDET),
        Published('MoCo v2', 'APmk', 36.1, _MMSS, _MMDET),
        Published('DenseCL', 'APbb', 40.3, _PAPER, _D2, verified=False),
        Published('DenseCL', 'APmk', 36.4, _PAPER, _D2, verified=False),
    ],
    'coco-c4-2x': [
        Published('MoCo v2', 'APbb', 40.6, _ZOO, _D2),
        Published('MoCo v2', 'APmk', 35.3, _ZOO, _D2),
    ],
    'voc12aug-20k': [
        Published('DenseCL', 'mIoU', 69.4, _README, 'mmseg fork, 5 trials'),
        Published('MoCo v2', 'mIoU', 67.5, _README, 'mmseg fork, 5 trials'),
        Published('DenseCL', 'mIoU', 69.47, _MMSS, _MMDET),
        Published('MoCo v2', 'mIoU', 67.55, _MMSS, _MMDET),
    ],
    'cityscapes-40k': [
        Published('DenseCL', 'mIoU', 75.7, _PAPER, 'mmseg fork',
                  verified=False),
        Published('MoCo v2', 'mIoU', 74.5, _PAPER, 'mmseg fork',
                  verified=False),
    ],
}


def published_for(benchmark: str, method: str,
                  metric: str) -> List[Published]:
    """The published numbers of ``method`` for ``metric`` on ``benchmark``."""
    return [p for p in PUBLISHED.get(benchmark, [])
            if p.method == method and p.metric == metric]
