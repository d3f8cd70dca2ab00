# Copyright (c) densecl_plugin contributors. All rights reserved.
"""tools/analysis/visualize_correspondence.py: arguments, outputs, a real run."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools/analysis/visualize_correspondence.py')
CONFIG = osp.join(ROOT, 'configs/densecl/densecl_resnet18_1xb16-coslr-200iters_folder-cpu.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('visualize_correspondence_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_args(tool):
    args = tool.parse_args([CONFIG, 'none', 'img.jpg', '--cells', '1,2', '0,0',
                            '--threshold', '0.8', '--seed', '5'])
    assert args.cells == [(1, 2), (0, 0)] and args.threshold == 0.8 and args.seed == 5
    assert args.out == 'work_dirs/correspondence' and args.device == 'cpu'
    with pytest.raises(SystemExit):
        tool.parse_args([CONFIG, 'none', 'img.jpg', '--cells', '1;2'])


def test_main_in_process(tool, real_image_paths, tmp_path, capsys):
    out = str(tmp_path / 'vis')
    summary = tool.main([CONFIG, 'random', real_image_paths[2], '--out', out,
                         '--seed', '1', '--cells', '0,1',
                         '--cfg-options', 'model.queue_len=64',
                         'train_dataloader.dataset.pipeline.1.transforms.0.0.size=96'])
    assert summary['grid'] == [3, 3] and summary['heatmap_cells'] == [[0, 1]]
    assert sorted(os.listdir(out)) == ['matches.png', 'similarity.png', 'summary.json']
    assert json.loads(capsys.readouterr().out)['num_cells'] == 9
    assert cv2.imread(osp.join(out, 'matches.png')) is not None


def test_cli_subprocess_from_another_folder(real_image_paths, tmp_path):
    out = tmp_path / 'cli'
    env = dict(os.environ, PYTHONPATH='')
    proc = subprocess.run(
        [sys.executable, TOOL, CONFIG, 'none', real_image_paths[0], '--out', str(out),
         '--cfg-options', 'model.queue_len=64'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.load(open(out / 'summary.json'))
    assert summary['grid'] == [2, 2] and summary['checkpoint'] == 'none'
    # a missing checkpoint fails with a message that names it
    proc = subprocess.run(
        [sys.executable, TOOL, CONFIG, str(tmp_path / 'nope.pth'), real_image_paths[0]],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0 and 'nope.pth' in proc.stderr
