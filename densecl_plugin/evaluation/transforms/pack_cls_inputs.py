# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Pack an image and its class label for a classifier."""
from typing import Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from densecl_plugin.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack ``img`` and ``gt_label`` into ``inputs`` and a data sample.

    Required Keys:

    - img: ``(H, W)`` or ``(H, W, C)`` uint8 array

    Optional Keys:

    - gt_label: int class index (absent at inference)
    - the ``meta_keys``

    Returns ``dict(inputs=Tensor (C, H, W), data_samples=BaseDataElement)``
    whose data sample has ``gt_label`` (a ``(1,)`` long tensor) and the meta
    keys found in the results as metainfo.

    Args:
        meta_keys (Sequence[str]): keys copied to the metainfo. Defaults to
            ``('img_path', 'ori_shape', 'img_shape')``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape',
                                             'img_shape')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        """Pack one sample.

        Args:
            results (dict): the results dict.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(
            np.ascontiguousarray(img.transpose(2, 0, 1)))  # (C, H, W)
        sample = BaseDataElement(metainfo={
            k: results[k] for k in self.meta_keys if k in results})
        if 'gt_label' in results:
            sample.gt_label = torch.as_tensor(
                results['gt_label'], dtype=torch.long).view(1)  # (1,)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
