# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``tools/model_converters/*.py``: the shared command line, in process and
as the real scripts in a subprocess."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from densecl_plugin.converters.cli import (CONVERTER_COMMANDS, converter_main,
                                           converter_parser)

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))), 'tools', 'model_converters')


def test_every_tool_has_a_command():
    tools = sorted(f[:-3] for f in os.listdir(TOOLS) if f.endswith('.py'))
    assert tools == sorted(CONVERTER_COMMANDS)
    for name in tools:
        args = converter_parser(name).parse_args(['a.pth', 'b.pth'])
        assert (args.src, args.dst) == ('a.pth', 'b.pth')
    with pytest.raises(KeyError, match='no converter'):
        converter_parser('to_onnx')


def test_summary_goes_to_log(resnet18_sd, make_checkpoint, tmp_path):
    src, dst = str(tmp_path / 'o.pth'), str(tmp_path / 'tv.pth')
    torch.save(make_checkpoint('densecl_plugin', resnet18_sd), src)
    lines = []
    sd = converter_main('densecl_to_torchvision', [src, dst], log=lines.append)
    assert lines == [f'{dst}: torchvision ResNet-18 backbone, {len(sd)} '
                     'tensors (no fc)']


def _run(*args, cwd):
    env = dict(os.environ, PYTHONPATH='')
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('name', sorted(CONVERTER_COMMANDS))
def test_script_help(name, tmp_path):
    proc = _run(osp.join(TOOLS, f'{name}.py'), '--help', cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f'usage: {name}.py [-h] src dst')
    assert CONVERTER_COMMANDS[name].description in proc.stdout


def test_script_extracts_a_backbone(resnet18_sd, make_checkpoint, tmp_path):
    src, dst = str(tmp_path / 'o.pth'), str(tmp_path / 'bb.pth')
    torch.save(make_checkpoint('moco', resnet18_sd), src)
    proc = _run(osp.join(TOOLS, 'extract_backbone_weights.py'), src, dst,
                cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"{dst}: {len(resnet18_sd)} backbone "
                                  "tensors from a ")
    assert "stripped 'module.encoder_q.'" in proc.stdout
    saved = torch.load(dst)['state_dict']
    assert sorted(saved) == sorted(resnet18_sd)
    proc = _run(osp.join(TOOLS, 'extract_backbone_weights.py'), 'only-src',
                cwd=str(tmp_path))
    assert proc.returncode == 2 and 'required: dst' in proc.stderr
