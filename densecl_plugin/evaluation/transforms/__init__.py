# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Transforms of the classification benchmark pipelines."""
from .pack_cls_inputs import PackClsInputs
from .resize_edge import ResizeEdge

__all__ = ['PackClsInputs', 'ResizeEdge']
