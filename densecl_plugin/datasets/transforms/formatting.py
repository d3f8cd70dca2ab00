# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``PackSelfSupInputs``: views to tensors and a data sample."""
from typing import Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from densecl_plugin.registry import TRANSFORMS
from ..self_sup_data_sample import SelfSupDataSample
from .geometric import get_ori_shape, get_view_record


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """An (H, W, C) or (H, W) image as a (C, H, W) tensor, without a copy.

    Args:
        img (np.ndarray): The image.

    Returns:
        torch.Tensor: A (C, H, W) tensor sharing the image's memory (a
        channel-last strided view; collating the batch makes it contiguous).
    """
    if img.ndim == 2:
        img = img[..., None]
    if not img.flags.writeable:  # torch warns on read-only memory
        img = img.copy()
    return torch.from_numpy(img).permute(2, 0, 1)  # (C, H, W)


@TRANSFORMS.register_module()
class PackSelfSupInputs(BaseTransform):
    """Pack the views and their records for the data preprocessor.

    Works after :class:`MultiView` (``img`` a list of views with their
    ``views`` records) and on a single image (one view, whose record comes
    from the results' ``crop_bbox``/``flip``).

    Required Keys:

    - img

    Returns:
        dict: ``inputs``, a list (one per view) of uint8 tensors (3, H, W),
        and ``data_samples``, a :class:`SelfSupDataSample` whose metainfo
        holds ``ori_shape``, ``views`` and the ``meta_keys`` present in the
        results.

    Args:
        meta_keys (Sequence[str]): Results keys copied into the metainfo when
            present. Defaults to ``('img_path', 'sample_idx')``
            (``sample_idx``: the data-set index MMEngine's ``BaseDataset``
            adds, read by the models' ``health_own_in_queue``).
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path',
                                                 'sample_idx')) -> None:
        if isinstance(meta_keys, str):
            meta_keys = (meta_keys, )
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        """Pack ``results``.

        Args:
            results (dict): The results of the view pipeline(s).

        Returns:
            dict: ``dict(inputs=[Tensor (3, H, W), ...],
            data_samples=SelfSupDataSample)``.
        """
        if 'img' not in results:
            raise KeyError('PackSelfSupInputs: the results have no "img"; put '
                           'LoadImageFromFile (and MultiView) before it')
        imgs = results['img']
        if isinstance(imgs, np.ndarray):
            views = [get_view_record(results)]
            imgs = [imgs]
        else:
            views = results.get('views')
            if views is None or len(views) != len(imgs):
                raise ValueError(
                    f'PackSelfSupInputs: {len(imgs)} view images but '
                    f'{None if views is None else len(views)} view records; '
                    'make the views with MultiView')
        metainfo = dict(ori_shape=get_ori_shape(results), views=views)
        for key in self.meta_keys:
            if key in results:
                metainfo[key] = results[key]
        return dict(
            inputs=[image_to_tensor(img) for img in imgs],
            data_samples=SelfSupDataSample(metainfo=metainfo))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


__all__ = ['PackSelfSupInputs', 'image_to_tensor']
