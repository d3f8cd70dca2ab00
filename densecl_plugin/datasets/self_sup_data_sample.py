# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``SelfSupDataSample``: the data sample of one unlabeled image."""
from mmengine.structures import BaseDataElement


class SelfSupDataSample(BaseDataElement):
    """The data sample of one image in self-supervised pre-training.

    It carries no labels, only meta information, set by
    :class:`~densecl_plugin.datasets.transforms.PackSelfSupInputs`:

    - ``img_path`` (str): the image file (and any other ``meta_keys``);
    - ``ori_shape`` (tuple[int, int]): ``(h, w)`` of the loaded image;
    - ``views`` (list[dict]): one record per view, in the order of
      ``inputs``: ``dict(crop_bbox=(x1, y1, x2, y2), flip=bool,
      img_shape=(h, w))`` (see
      :mod:`densecl_plugin.datasets.transforms.geometric` for the exact
      geometry).

    Metainfo fields read as attributes (``data_sample.views``). The class
    lives in :mod:`densecl_plugin.datasets` because only the data side creates
    it; models read its metainfo and need not import it.

    Examples:
        >>> sample = SelfSupDataSample(metainfo=dict(img_path='a.jpg',
        ...     ori_shape=(4, 6), views=[dict(crop_bbox=(0., 0., 6., 4.),
        ...     flip=False, img_shape=(4, 6))]))
        >>> sample.views[0]['flip']
        False
    """


__all__ = ['SelfSupDataSample']
