# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The command line shared by ``tools/model_converters/*.py``.

Each converter reads ``SRC`` and writes ``DST``, then prints one line on
what it wrote::

    python tools/model_converters/extract_backbone_weights.py SRC DST
    python tools/model_converters/densecl_to_torchvision.py SRC DST
    python tools/model_converters/densecl_to_detectron2.py SRC DST.pkl
    python tools/model_converters/densecl_to_timm.py SRC DST.safetensors
    python tools/model_converters/densecl_to_onnx.py SRC DST.onnx
"""
import argparse
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .extract_backbone_weights import BackboneWeights, extract_backbone_weights
from .resnet_layout import infer_resnet_depth
from .to_detectron2 import convert_to_detectron2
from .to_onnx import OnnxExport, convert_to_onnx
from .to_timm import convert_to_timm, timm_model_name
from .to_torchvision import convert_to_torchvision


@dataclass(frozen=True)
class ConverterCommand:
    """One converter's command line.

    Attributes:
        description (str): The ``--help`` description.
        src_help (str): Help of ``SRC``.
        dst_help (str): Help of ``DST``.
        convert (Callable[[str, str], Any]): ``convert(src, dst)``.
        summary (Callable[[str, Any], str]): The line printed from ``DST``
            and what ``convert`` returned.
    """
    description: str
    src_help: str
    dst_help: str
    convert: Callable[[str, str], Any]
    summary: Callable[[str, Any], str]


def _extracted(dst: str, out: BackboneWeights) -> str:
    return (f'{dst}: {len(out.state_dict)} backbone tensors from a '
            f'{out.layout} checkpoint (stripped {out.prefix!r}'
            + (f', dropped {out.dropped}' if out.dropped else '') + ')')


def _torchvision(dst: str, state_dict: dict) -> str:
    return (f'{dst}: torchvision ResNet-{infer_resnet_depth(state_dict)} '
            f'backbone, {len(state_dict)} tensors (no fc)')


def _detectron2(dst: str, model: dict) -> str:
    return (f'{dst}: {len(model)} detectron2 arrays '
            '(matching_heuristics=True)')


def _timm(dst: str, state_dict: dict) -> str:
    name = timm_model_name(state_dict)
    return (f'{dst}: timm {name} backbone, {len(state_dict)} tensors (no fc); '
            f"load: timm.create_model('{name}', num_classes=0, "
            f"checkpoint_path='{dst}')")


def _onnx(dst: str, out: OnnxExport) -> str:
    return (f'{dst}: ONNX ResNet-{out.depth} backbone (opset {out.opset}), '
            f'input image (N, 3, H, W) normalised RGB, outputs c5 '
            f'(N, {out.channels}, ceil(H/32), ceil(W/32)) and pooled '
            f'(N, {out.channels})')


_ANY_CHECKPOINT = 'pre-training or extracted checkpoint'

#: the tools' names (``tools/model_converters/<name>.py``) -> command
CONVERTER_COMMANDS = {
    'extract_backbone_weights': ConverterCommand(
        'Extract the backbone of a pre-training checkpoint.',
        'pre-training checkpoint', 'output file (.pth)',
        extract_backbone_weights, _extracted),
    'densecl_to_torchvision': ConverterCommand(
        'Convert a pre-training checkpoint to a torchvision ResNet state '
        'dict.', _ANY_CHECKPOINT, 'output file (.pth)',
        convert_to_torchvision, _torchvision),
    'densecl_to_detectron2': ConverterCommand(
        'Convert a pre-training checkpoint to a detectron2 ResNet ``.pkl``.',
        _ANY_CHECKPOINT, 'output file (.pkl)', convert_to_detectron2,
        _detectron2),
    'densecl_to_timm': ConverterCommand(
        'Convert a pre-training checkpoint to a timm ResNet state dict.',
        _ANY_CHECKPOINT, 'output file (.safetensors, or .pth for torch.save)',
        convert_to_timm, _timm),
    'densecl_to_onnx': ConverterCommand(
        'Export the backbone of a pre-training checkpoint to ONNX.',
        _ANY_CHECKPOINT, 'output file (.onnx)',
        convert_to_onnx, _onnx),
}


def converter_parser(name: str) -> argparse.ArgumentParser:
    """The ``SRC DST`` parser of converter ``name``.

    Args:
        name (str): A key of :data:`CONVERTER_COMMANDS`.

    Returns:
        argparse.ArgumentParser: Its parser (``prog`` is ``<name>.py``).
    """
    if name not in CONVERTER_COMMANDS:
        raise KeyError(f'no converter {name!r}; one of '
                       f'{sorted(CONVERTER_COMMANDS)}')
    cmd = CONVERTER_COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f'{name}.py',
                                     description=cmd.description)
    parser.add_argument('src', help=cmd.src_help)
    parser.add_argument('dst', help=cmd.dst_help)
    return parser


def converter_main(name: str, argv: Optional[Sequence[str]] = None,
                   log: Callable[[str], Any] = print) -> Any:
    """Parse ``SRC DST``, convert, print the summary line.

    Args:
        name (str): A key of :data:`CONVERTER_COMMANDS`.
        argv (Sequence[str], optional): The arguments. Defaults to None
            (``sys.argv[1:]``).
        log (Callable): Printer of the summary. Defaults to ``print``.

    Returns:
        Any: What the converter returned (:class:`BackboneWeights`, a
        torchvision or timm state dict, the detectron2 arrays or the
        :class:`~.to_onnx.OnnxExport`).
    """
    args = converter_parser(name).parse_args(argv)
    cmd = CONVERTER_COMMANDS[name]
    out = cmd.convert(args.src, args.dst)
    log(cmd.summary(args.dst, out))
    return out
