# Copyright (c) densecl_plugin contributors. All rights reserved.
"""MMEngine's visualizer, drawing DenseCL's dense matches as well."""
from typing import Optional, Sequence

from mmengine.dist import master_only
from mmengine.structures import BaseDataElement
from mmengine.visualization import Visualizer
from torch import Tensor

from densecl_plugin.registry import VISUALIZERS
from .correspondence_figures import draw_matches, to_rgb_image


@VISUALIZERS.register_module()
class CorrespondenceVisualizer(Visualizer):
    """``Visualizer`` whose ``add_datasample`` draws two views' matches.

    What ``CorrespondenceHook`` sends (``image=...``): the two packed views
    and a data sample with their :class:`DenseMatches` (field
    ``matches``) and the metainfo ``views`` (each view's ``([x1, y1, x2,
    y2], flip)``), ``threshold`` and ``title``. The figure is
    :func:`~.correspondence_figures.draw_matches` (the mutual best matches
    above ``threshold``; red where the geometry says they are wrong),
    written with ``add_image`` to every vis backend. Everything else is
    MMEngine's ``Visualizer``; use it as ``visualizer=dict(type=
    'CorrespondenceVisualizer', vis_backends=[...])``.
    """

    @master_only
    def add_datasample(self,
                       name: str,
                       image: Sequence[Tensor],
                       data_sample: Optional[BaseDataElement] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: int = 0,
                       step: int = 0) -> None:
        """Draw the matches of two views and add the figure as ``name``.

        Args:
            name (str): The image's name.
            image (Sequence[Tensor]): The two views, uint8 ``(3, H, W)``
                BGR each (as ``PackSelfSupInputs`` packs them).
            data_sample (BaseDataElement): ``matches`` and the metainfo
                ``views``, ``threshold`` (defaults to 0.9) and ``title``
                (defaults to None, a summary of the counts).
            draw_gt (bool): Unused (MMEngine's signature).
            draw_pred (bool): Unused (MMEngine's signature).
            show (bool): Also show the figure. Defaults to False.
            wait_time (int): Seconds the shown figure stays. Defaults to 0.
            step (int): The global step. Defaults to 0.
        """
        if data_sample is None or 'matches' not in data_sample:
            raise ValueError(
                f'CorrespondenceVisualizer.add_datasample({name!r}): expected '
                f'a data sample with `matches` (and the metainfo `views`), '
                f'got {data_sample!r}')
        q_img, k_img = (to_rgb_image(v) for v in image[:2])
        q_geom, k_geom = data_sample.views
        rgb = draw_matches(q_img, k_img, data_sample.matches, q_geom, k_geom,
                           data_sample.get('threshold', 0.9),
                           title=data_sample.get('title'))
        if show:
            self.show(rgb, win_name=name, wait_time=wait_time)
        self.add_image(name, rgb, step)
