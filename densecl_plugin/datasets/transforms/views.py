# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``MultiView``: several independently augmented views of one image."""
import copy
from typing import Callable, Dict, List, Optional, Sequence, Union

from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose

from densecl_plugin.registry import TRANSFORMS
from .geometric import get_ori_shape, get_view_record

PipelineCfg = Sequence[Union[dict, Callable]]


def build_pipeline(pipeline: PipelineCfg) -> Compose:
    """Build a list of transform configs with *our* registry.

    ``mmengine.dataset.Compose`` builds configs from MMEngine's root registry,
    which finds our transforms only inside a Runner whose default scope is
    ``densecl_plugin``; building them here makes pipelines work anywhere.

    Args:
        pipeline (Sequence[dict | Callable]): Transform configs or objects.

    Returns:
        Compose: The built pipeline.
    """
    if isinstance(pipeline, (dict, str)) or not isinstance(pipeline,
                                                           Sequence):
        raise TypeError('a pipeline must be a list of transform configs '
                        f'(dicts) or callables, but got {pipeline!r}')
    return Compose([
        TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline
    ])


@TRANSFORMS.register_module()
class MultiView(BaseTransform):
    """Apply independent pipelines to make several views of one image.

    Each view starts from its own copy of the input results (the image array
    itself is shared read-only, not copied: a transform that writes into
    ``results['img']`` in place raises instead of corrupting the other
    views), runs its pipeline with its own random draws, and keeps its own
    geometry record. As mmpretrain's ``MultiView``: with one pipeline and
    ``num_views=n`` it is repeated ``n`` times; with several pipelines,
    ``num_views`` is a list giving how many views each one makes.

    Required Keys:

    - img

    Modified Keys:

    - img: the list of view images, in order

    Added Keys:

    - views: one ``dict(crop_bbox=(x1, y1, x2, y2), flip=bool,
      img_shape=(h, w))`` per view, in order (see
      :mod:`densecl_plugin.datasets.transforms.geometric`)
    - ori_shape: when absent, the input image's shape

    Args:
        num_views (int | Sequence[int]): Views per pipeline.
        transforms (Sequence[Sequence[dict | Callable]]): One pipeline (a
            list of transform configs) per kind of view.

    Examples:
        >>> view = [dict(type='RandomResizedCrop', size=224),
        ...         dict(type='RandomFlip')]
        >>> t = MultiView(num_views=2, transforms=[view])
    """

    def __init__(self, num_views: Union[int, Sequence[int]],
                 transforms: Sequence[PipelineCfg]) -> None:
        if (not isinstance(transforms, Sequence) or not transforms
                or not all(isinstance(p, Sequence) for p in transforms)):
            raise TypeError('MultiView: transforms must be a non-empty list '
                            'of pipelines (each a list of transform configs), '
                            f'but got {transforms!r}')
        if isinstance(num_views, int):
            num_views = [num_views]
        num_views = list(num_views)
        if len(transforms) == 1 and len(num_views) == 1:
            pass
        elif len(num_views) != len(transforms):
            raise ValueError(
                f'MultiView: {len(transforms)} pipelines need one count each, '
                f'but num_views={num_views}')
        if not all(isinstance(n, int) and n > 0 for n in num_views):
            raise ValueError('MultiView: num_views must be positive ints, but '
                             f'got {num_views}')
        self.num_views = num_views
        self.pipelines: List[Compose] = []
        for n, pipeline in zip(num_views, transforms):
            built = build_pipeline(pipeline)
            self.pipelines.extend([built] * n)

    def transform(self, results: Dict) -> Optional[Dict]:
        """Make the views of ``results['img']``.

        Args:
            results (dict): The results dict with one loaded image.

        Returns:
            dict | None: The results with ``img`` a list of views and
            ``views`` their records; None if a view pipeline returned None.
        """
        img = results['img']
        get_ori_shape(results)
        writeable = img.flags.writeable
        img.flags.writeable = False  # shared by the views: read-only
        try:
            views = []
            for pipeline in self.pipelines:
                view = {
                    k: v if k == 'img' else copy.deepcopy(v)
                    for k, v in results.items()
                }
                view = pipeline(view)
                if view is None:
                    return None
                views.append(view)
        finally:
            img.flags.writeable = writeable
        results['img'] = [view['img'] for view in views]
        results['views'] = [get_view_record(view) for view in views]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_views={self.num_views}, '
                f'pipelines={self.pipelines})')


__all__ = ['MultiView', 'build_pipeline']
