# Copyright (c) densecl_plugin contributors. All rights reserved.
"""tools/analysis/visualize_correspondence.py: arguments, outputs, a real run
(its logic is :func:`densecl_lab.analysis.visualize_correspondence`,
called in process here; the script runs in a subprocess)."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2

from densecl_lab.analysis.visualize_correspondence import \
    visualize_correspondence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools/analysis/visualize_correspondence.py')
CONFIG = osp.join(ROOT, 'configs/densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py')


def _run(*args, cwd):
    env = dict(os.environ, PYTHONPATH='')
    return subprocess.run([sys.executable, TOOL, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


def test_arguments(tmp_path):
    proc = _run('--help', cwd=str(tmp_path))
    assert proc.returncode == 0
    assert '--out OUT             output folder' in proc.stdout
    assert '--cfg-options CFG_OPTIONS' in proc.stdout
    proc = _run(CONFIG, 'none', 'img.jpg', '--cells', '1;2', cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "a cell is ROW,COL (two integers), got '1;2'" in proc.stderr


def test_in_process(real_image_paths, tmp_path):
    out = str(tmp_path / 'vis')
    summary = visualize_correspondence(
        CONFIG, 'random', real_image_paths[2], out, seed=1, cells=[(0, 1)],
        cfg_options={'model.queue_len': 64,
                     'train_dataloader.dataset.pipeline.1.transforms.0.0.size': 96})
    assert summary['grid'] == [3, 3] and summary['heatmap_cells'] == [[0, 1]]
    assert sorted(os.listdir(out)) == ['matches.png', 'similarity.png', 'summary.json']
    with open(osp.join(out, 'summary.json')) as f:
        assert json.load(f)['num_cells'] == 9
    assert cv2.imread(osp.join(out, 'matches.png')) is not None


def test_cli_subprocess_from_another_folder(real_image_paths, tmp_path):
    out = tmp_path / 'cli'
    proc = _run(CONFIG, 'none', real_image_paths[0], '--out', str(out),
                '--cfg-options', 'model.queue_len=64', cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.load(open(out / 'summary.json'))
    # the CPU config's 80 px views: a 3 x 3 C5 grid
    assert summary['grid'] == [3, 3] and summary['checkpoint'] == 'none'
    printed = proc.stdout[proc.stdout.index('{\n'):]  # after any log lines
    printed = json.loads(printed)  # the summary, as the script prints it
    assert printed['grid'] == [3, 3] and printed['num_cells'] == 9
    # a missing checkpoint fails with a message that names it
    proc = _run(CONFIG, str(tmp_path / 'nope.pth'), real_image_paths[0],
                cwd=str(tmp_path))
    assert proc.returncode != 0 and 'nope.pth' in proc.stderr
