# Copyright (c) densecl_plugin contributors. All rights reserved.
"""run_config: a real MMEngine run of a demo config, quiet, recorded."""
import copy
import logging
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger, print_log

from densecl_lab.demo.runs import quiet_logs, run_config
from densecl_lab.demo.stages import CONFIGS
from densecl_lab.utils.staged_run import default_configs_dir


def _tiny_pretrain_cfg(data_root):
    """The demo's DenseCL config at toy size (same pipeline and hooks)."""
    cfg = Config.fromfile(osp.join(default_configs_dir(), CONFIGS['densecl']))
    cfg.model.backbone.base_channels = 8
    cfg.model.neck.in_channels = 64
    cfg.model.neck.hid_channels = 16
    cfg.model.queue_len = 8
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.dataset.data_root = data_root
    cfg.train_dataloader.dataset.pipeline[1].transforms[0][0].size = 64
    cfg.train_cfg.max_iters = 3
    cfg.default_hooks.checkpoint.interval = 3
    cfg.custom_hooks[0].start_iters = 1
    return cfg


def test_run_config_is_quiet_recorded_and_leaves_no_handlers(
        tmp_path, real_image_dir, capsys):
    cfg = _tiny_pretrain_cfg(real_image_dir)
    before = copy.deepcopy(cfg.to_dict())
    log_file = tmp_path / 'logs' / 'demo.log'
    record = run_config(cfg, str(tmp_path / 'run'), 'tiny pre-train',
                        str(log_file),
                        init_checkpoint=str(tmp_path / 'run' / 'init.pth'),
                        show_progress=False)
    out = capsys.readouterr()
    assert 'mmengine' not in out.out and 'mmengine' not in out.err
    log = log_file.read_text()
    assert 'Saving checkpoint at 3 iterations' in log  # the runner's log
    assert cfg.to_dict() == before  # the caller's config is not changed

    assert [r['iter'] for r in record.losses] == [1, 2, 3]
    # DenseCLHook(start_iters=1): lambda = 0 in iteration 1, then 0.5
    assert [r['lambda'] for r in record.losses] == [0.0, 0.5, 0.5]
    assert record.losses[0]['loss_dense'] == 0.0
    assert record.losses[-1]['loss_dense'] > 0.0
    assert record.metrics == {}  # no validation in pre-training
    assert 0 < record.train_time <= record.wall_time
    assert osp.isfile(tmp_path / 'run' / 'iter_3.pth')
    init = torch.load(tmp_path / 'run' / 'init.pth', weights_only=True)
    last = torch.load(tmp_path / 'run' / 'iter_3.pth', weights_only=False)
    key = 'backbone.conv1.weight'
    assert not torch.equal(init['state_dict'][key], last['state_dict'][key])

    # no logger still writes to the closed log file
    for logger in list(MMLogger._instance_dict.values()) + [
            logging.getLogger()]:
        for handler in logger.handlers:
            stream = getattr(handler, 'stream', None)
            assert stream is None or not getattr(stream, 'closed', False)
    print_log('after the run', logger='current')  # must not raise


def test_quiet_logs_appends(tmp_path, capsys):
    path = tmp_path / 'a.log'
    with quiet_logs(str(path)):
        print('first')
    with quiet_logs(str(path)):
        print('second')
        import warnings
        warnings.warn('a warning goes to the log too')
    assert capsys.readouterr().out == ''
    text = path.read_text()
    assert text.index('first') < text.index('second')
    assert 'a warning goes to the log too' in text
