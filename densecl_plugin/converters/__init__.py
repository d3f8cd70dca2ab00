# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Checkpoint converters: backbone extraction, torchvision, detectron2, timm
and ONNX."""
from .checkpoint_io import find_state_dict, load_checkpoint_file
from .extract_backbone_weights import (BACKBONE_PREFIXES,
                                       BackboneNotFoundError, BackboneWeights,
                                       extract_backbone_state_dict,
                                       extract_backbone_weights,
                                       load_backbone_weights,
                                       summarize_prefixes)
from .resnet_layout import (check_torchvision_resnet, infer_resnet_depth,
                            torchvision_resnet_shapes)
from .to_detectron2 import convert_to_detectron2, torchvision_to_detectron2_key
from .to_onnx import (BackboneFeatures, OnnxExport, build_resnet_backbone,
                      convert_to_onnx)
from .to_timm import convert_to_timm, timm_model_name
from .to_torchvision import convert_to_torchvision, torchvision_backbone

__all__ = [
    'BACKBONE_PREFIXES', 'BackboneFeatures', 'BackboneNotFoundError',
    'BackboneWeights', 'OnnxExport', 'build_resnet_backbone',
    'check_torchvision_resnet', 'convert_to_detectron2', 'convert_to_onnx',
    'convert_to_timm', 'convert_to_torchvision',
    'extract_backbone_state_dict', 'extract_backbone_weights',
    'find_state_dict', 'infer_resnet_depth', 'load_backbone_weights',
    'load_checkpoint_file', 'summarize_prefixes', 'timm_model_name',
    'torchvision_backbone', 'torchvision_resnet_shapes',
    'torchvision_to_detectron2_key'
]
