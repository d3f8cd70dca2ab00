# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Read the real images and annotations that the fetched wheels ship.

- deepforest 2.1.0: aerial RGB tiles of tree crowns with Pascal VOC XML
  boxes. The XML coordinates are 0-based pixel edges (``xmax`` may equal the
  image width), the same numbers as deepforest's CSV files.
- stardist 0.9.2: ``img2d.tif`` (512x512 uint16 fluorescence nuclei, from the
  2018 Data Science Bowl) and ``mask2d.tif`` (its 125 instance labels).
"""
import os.path as osp
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .fetch import deepforest_data_dir, stardist_data_dir

#: the deepforest tiles that carry VOC boxes, smallest first (the 2299x2472
#: ``2019_YELL_2_528000_4978000_image_crop2`` is also there: 574 boxes)
DEEPFOREST_IMAGES: Tuple[str, ...] = (
    'OSBS_029', 'SOAP_061', '2019_YELL_2_541000_4977000_image_crop')


@dataclass
class BoxAnnotatedImage:
    """An RGB image with axis-aligned boxes.

    Attributes:
        name (str): the source file stem.
        image (ndarray): (H, W, 3) uint8 RGB.
        boxes (ndarray): (N, 4) float32 ``x1, y1, x2, y2`` in 0-based pixel
            edges (a box over the whole image is ``0, 0, W, H``).
        labels (list[str]): N class names.
    """
    name: str
    image: np.ndarray
    boxes: np.ndarray
    labels: List[str]


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, with a clear error."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path!r}')
    return np.ascontiguousarray(img[..., ::-1])


def parse_voc_xml(path: str) -> Tuple[Tuple[int, int], np.ndarray, List[str]]:
    """Parse a Pascal VOC XML file.

    Args:
        path (str): the ``.xml`` file.

    Returns:
        tuple: ``(width, height)``, (N, 4) float32 boxes as written, and the
        N object names.
    """
    root = ET.parse(path).getroot()
    size = root.find('size')
    wh = (int(size.find('width').text), int(size.find('height').text))
    boxes, labels = [], []
    for obj in root.iter('object'):
        bnd = obj.find('bndbox')
        boxes.append([float(bnd.find(t).text)
                      for t in ('xmin', 'ymin', 'xmax', 'ymax')])
        labels.append(obj.find('name').text.strip())
    return wh, np.asarray(boxes, np.float32).reshape(-1, 4), labels


def load_deepforest_image(name: str, cache_dir: Optional[str] = None
                          ) -> BoxAnnotatedImage:
    """Load one deepforest tile and its VOC boxes.

    Args:
        name (str): one of :data:`DEEPFOREST_IMAGES` (or the big
            ``2019_YELL_2_528000_4978000_image_crop2``).
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        BoxAnnotatedImage: the image with its boxes clipped to the image.
    """
    root = deepforest_data_dir(cache_dir)
    xml = osp.join(root, f'{name}.xml')
    if not osp.isfile(xml):
        raise FileNotFoundError(f'deepforest has no annotations {name}.xml; '
                                f'choose from {DEEPFOREST_IMAGES}')
    image = read_rgb(osp.join(root, f'{name}.png'))
    (w, h), boxes, labels = parse_voc_xml(xml)
    if (h, w) != image.shape[:2]:
        raise ValueError(f'{xml} says {w}x{h} but the image is '
                         f'{image.shape[1]}x{image.shape[0]}')
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return BoxAnnotatedImage(name, image, boxes, labels)


def to_uint8(img: np.ndarray, low: float = 1.0, high: float = 99.8
             ) -> np.ndarray:
    """Percentile-normalise a microscopy image to uint8 (as stardist's
    ``normalize``)."""
    lo, hi = np.percentile(img, (low, high))
    out = (img.astype(np.float32) - lo) / max(hi - lo, 1e-6)
    return (out.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def load_stardist_nuclei(cache_dir: Optional[str] = None
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """Load stardist's 2-D nuclei image and its instance labels.

    Returns:
        tuple: (512, 512, 3) uint8 RGB image (grey in 3 channels) and
        (512, 512) int32 instance ids (0 = background, 1..125 nuclei).
    """
    import tifffile
    root = stardist_data_dir(cache_dir)
    img = tifffile.imread(osp.join(root, 'img2d.tif'))
    mask = tifffile.imread(osp.join(root, 'mask2d.tif')).astype(np.int32)
    if img.shape != mask.shape:
        raise ValueError(f'stardist img2d {img.shape} and mask2d {mask.shape}'
                         ' differ')
    grey = to_uint8(img)
    return np.repeat(grey[..., None], 3, axis=2), mask
