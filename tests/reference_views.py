# Copyright (c) densecl_plugin contributors. All rights reserved.
"""An independent reference for the inference tools' input: a photo read
with cv2, its short side resized to ``size``, the centre ``size`` x
``size`` crop, RGB, normalised with ImageNet's mean and std by hand.

``tests/`` is on ``sys.path``, so a test can ``from reference_views
import centre_crop``."""
import cv2
import numpy as np
import torch

MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def centre_crop(path: str, size: int) -> torch.Tensor:
    """The ``(3, size, size)`` float input of the photo at ``path``."""
    img = cv2.imread(path)  # BGR
    h, w = img.shape[:2]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    t, le = (nh - size) // 2, (nw - size) // 2
    rgb = img[t:t + size, le:le + size, ::-1].astype(np.float32)
    return torch.from_numpy((rgb - MEAN) / STD).permute(2, 0, 1)
