# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Evaluation of pre-trained backbones: linear probe and DAVIS propagation.

Importing this package registers the linear-evaluation components in the
``densecl_plugin`` scope: the model :class:`LinearClassifier`, the metric
:class:`Accuracy`, the dataset :class:`ClassFolderDataset` and the transforms
:class:`ResizeEdge` and :class:`PackClsInputs`. The DAVIS-2017 benchmark
lives in :mod:`densecl_plugin.evaluation.davis` (plain functions, nothing
registered).
"""
from .accuracy import Accuracy, topk_accuracy
from .class_folder_dataset import IMG_EXTENSIONS, ClassFolderDataset
from .linear_classifier import LinearClassifier
from .pretrained_backbone import load_pretrained_backbone
from .transforms import PackClsInputs, ResizeEdge

__all__ = [
    'Accuracy', 'ClassFolderDataset', 'IMG_EXTENSIONS', 'LinearClassifier',
    'PackClsInputs', 'ResizeEdge', 'load_pretrained_backbone',
    'topk_accuracy'
]
