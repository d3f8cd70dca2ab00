# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``SelfSupDataPreprocessor``: batches of views to normalised tensors."""
import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import ImgDataPreprocessor
from mmengine.model.utils import stack_batch

from densecl_plugin.registry import MODELS

#: ImageNet mean and std of RGB 0-255 images
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class SelfSupDataPreprocessor(ImgDataPreprocessor):
    """Turn the collated views into normalised float batches, one per view.

    Input (from ``PackSelfSupInputs`` and the collate function): ``inputs`` is
    a list with one entry per view, each either a uint8 tensor (N, 3, H, W)
    (``default_collate``) or a list of N tensors (3, H, W)
    (``pseudo_collate``). Each view is moved to the model's device while still
    uint8, its channels reversed (BGR -> RGB), converted to float and
    normalised: ``(x - mean) / std``.

    Accepts the keys of mmselfsup 1.x (``bgr_to_rgb``) and mmpretrain 1.x
    (``to_rgb``) configs.

    Args:
        mean (Sequence[float], optional): Per-channel mean, in the output
            channel order (RGB). None disables normalisation. Defaults to the
            ImageNet mean ``(123.675, 116.28, 103.53)``.
        std (Sequence[float], optional): Per-channel std. Defaults to the
            ImageNet std ``(58.395, 57.12, 57.375)``.
        pad_size_divisor (int): Pad each view's H and W (bottom, right) up to
            a multiple of this. Defaults to 1.
        pad_value (float): Value of the padding (after normalisation).
            Defaults to 0.
        to_rgb (bool, optional): Reverse the channels (BGR -> RGB). Defaults
            to True when neither it nor ``bgr_to_rgb`` is given.
        bgr_to_rgb (bool, optional): mmselfsup's name for ``to_rgb``.
            Defaults to None.
        rgb_to_bgr (bool): Reverse the channels (RGB -> BGR). Defaults to
            False.
        channels_last (bool): Return the batches in ``torch.channels_last``
            memory format (same shape); otherwise contiguous NCHW. Defaults to
            False.
        non_blocking (bool): Copy to the device without blocking. Defaults to
            False.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = IMAGENET_MEAN,
                 std: Optional[Sequence[float]] = IMAGENET_STD,
                 pad_size_divisor: int = 1,
                 pad_value: Union[float, int] = 0,
                 to_rgb: Optional[bool] = None,
                 bgr_to_rgb: Optional[bool] = None,
                 rgb_to_bgr: bool = False,
                 channels_last: bool = False,
                 non_blocking: bool = False) -> None:
        if (to_rgb is not None and bgr_to_rgb is not None
                and bool(to_rgb) != bool(bgr_to_rgb)):
            raise ValueError('SelfSupDataPreprocessor: to_rgb and bgr_to_rgb '
                             f'are the same option but got to_rgb={to_rgb}, '
                             f'bgr_to_rgb={bgr_to_rgb}')
        reverse = to_rgb if to_rgb is not None else bgr_to_rgb
        if reverse is None:
            reverse = not rgb_to_bgr
        if reverse and rgb_to_bgr:
            raise ValueError('SelfSupDataPreprocessor: rgb_to_bgr=True '
                             'contradicts to_rgb/bgr_to_rgb=True')
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise ValueError('SelfSupDataPreprocessor: pad_size_divisor must '
                             f'be an int >= 1, but got {pad_size_divisor!r}')
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            bgr_to_rgb=bool(reverse),
            rgb_to_bgr=bool(rgb_to_bgr),
            non_blocking=non_blocking)
        self.channels_last = channels_last

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Reverse channels (dim -3), convert to float and normalise."""
        if self._channel_conversion:
            x = x.flip(-3)  # (..., 3, H, W) reversed channels, still uint8
        memory_format = (torch.channels_last if self.channels_last
                         and x.dim() == 4 else torch.contiguous_format)
        x = x.to(torch.float32, memory_format=memory_format)  # (..., 3, H, W)
        if self._enable_normalize:
            x.sub_(self.mean).div_(self.std)  # (..., 3, H, W) normalised
        return x

    def _process_view(self, view: Union[torch.Tensor, Sequence[torch.Tensor]],
                      index: int) -> torch.Tensor:
        """One view's batch (N, 3, H, W): stack, normalise, pad."""
        memory_format = (torch.channels_last
                         if self.channels_last else torch.contiguous_format)
        if isinstance(view, (list, tuple)):
            if not view or not all(
                    isinstance(t, torch.Tensor) and t.dim() == 3
                    for t in view):
                raise TypeError(
                    f'SelfSupDataPreprocessor: view {index} must be a '
                    '(N, C, H, W) tensor or a list of (C, H, W) tensors')
            if len({tuple(t.shape) for t in view}) > 1:  # pad to one size
                self._check_channels(view[0].shape[0], index)
                x = stack_batch([self._normalize(t) for t in view],
                                self.pad_size_divisor, self.pad_value)
                return x.contiguous(memory_format=memory_format)
            view = torch.stack(list(view))  # (N, C, H, W)
        if not isinstance(view, torch.Tensor) or view.dim() != 4:
            raise TypeError(
                f'SelfSupDataPreprocessor: view {index} must be a '
                '(N, C, H, W) tensor or a list of (C, H, W) tensors, but got '
                f'{getattr(view, "shape", type(view))}')
        self._check_channels(view.shape[1], index)
        x = self._normalize(view)  # (N, 3, H, W) float
        h, w = x.shape[2:]
        pad_h = math.ceil(h / self.pad_size_divisor) * self.pad_size_divisor
        pad_w = math.ceil(w / self.pad_size_divisor) * self.pad_size_divisor
        if (pad_h, pad_w) != (h, w):
            x = F.pad(x, (0, pad_w - w, 0, pad_h - h), 'constant',
                      self.pad_value)  # (N, 3, pad_h, pad_w)
            x = x.contiguous(memory_format=memory_format)
        return x

    def _check_channels(self, channels: int, index: int) -> None:
        """Raise when a view's channels do not match mean/std."""
        if self._enable_normalize and self.mean.numel() not in (1, channels):
            raise ValueError(
                f'SelfSupDataPreprocessor: view {index} has {channels} '
                f'channels but mean/std have {self.mean.numel()} values')

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess a batch of views.

        Args:
            data (dict): ``dict(inputs=[view, ...], data_samples=...)`` from
                the dataloader.
            training (bool): Unused (no batch augmentation). Defaults to
                False.

        Returns:
            dict: ``dict(inputs=[Tensor (N, 3, H, W) float per view],
            data_samples=...)``.
        """
        data = self.cast_data(data)  # uint8 views to the device
        views = data.get('inputs') if isinstance(data, dict) else None
        if not isinstance(views, (list, tuple)) or not views:
            raise TypeError(
                'SelfSupDataPreprocessor expects dict(inputs=[view, ...]) '
                'with one entry per view (from PackSelfSupInputs), but got '
                f'inputs of type {type(views).__name__}')
        inputs: List[torch.Tensor] = [
            self._process_view(view, i) for i, view in enumerate(views)
        ]
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
