# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The size of what a reader meets (issue 28): ``DenseCL.loss`` fits on one
screen (at most 35 lines of code) and a default DenseCL ``train_step`` runs
code in at most 9 files of the plugin, counted by tracing real steps."""
import ast
import inspect
import os.path as osp
import sys
import textwrap

import torch
from mmengine.optim import OptimWrapper

import densecl_plugin
from densecl_plugin.models import DenseCL
from densecl_plugin.registry import MODELS
from tiny_models import tiny_model_cfg


def code_lines(fn) -> int:
    """Lines of ``fn`` less its docstring, comment-only and blank lines."""
    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    doc = node.body[0]
    skip = set()
    if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
        skip = set(range(doc.lineno, doc.end_lineno + 1))
    return sum(1 for i, line in enumerate(src.splitlines(), 1)
               if i not in skip and line.strip()
               and not line.strip().startswith('#'))


def test_loss_is_one_screen():
    assert code_lines(DenseCL.loss) <= 35


def test_code_lines_counts_code_only():
    def f(x):
        """Doc.

        More doc.
        """
        # a comment

        y = x + 1  # trailing comments count as code
        return y
    assert code_lines(f) == 3  # def, y =, return


def test_a_default_step_runs_in_at_most_nine_files():
    """Every argument at its default (health every 10th step, the default
    data preprocessor) but a small backbone and neck widths, which change no
    code path; 10 steps, so a health step is among them."""
    cfg = tiny_model_cfg('DenseCL', queue_len=64)
    cfg.pop('data_preprocessor')  # the default SelfSupDataPreprocessor
    model = MODELS.build(cfg).train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    root = osp.dirname(osp.realpath(densecl_plugin.__file__)) + osp.sep
    files = set()

    def trace(frame, event, arg):
        path = osp.realpath(frame.f_code.co_filename)
        if path.startswith(root):
            files.add(path[len(root):])

    data = dict(inputs=[torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8)
                        for _ in range(2)])
    sys.setprofile(trace)
    try:
        logs = [model.train_step(data, optim) for _ in range(10)]
    finally:
        sys.setprofile(None)
    assert 'health_pos_cos' in logs[9]  # the health metrics ran too
    assert 'models/algorithms/densecl.py' in files
    assert len(files) <= 9, sorted(files)
