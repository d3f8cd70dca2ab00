# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DemoProgressHook in a real Runner: bars, per-iteration losses, metrics,
times and the exact initial weights."""
import io
import json
import sys

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from densecl_lab.demo import DemoProgressHook
from densecl_plugin.registry import HOOKS


class Points(Dataset):
    """y = 2 x + 1 with a fixed noise, x in R^4 summed."""

    def __init__(self, n=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.y = 2 * self.x.sum(1, keepdim=True) + 1 + 0.1 * torch.randn(
            n, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], target=self.y[i])


class Regressor(BaseModel):
    """A linear model whose loss dict has two loss terms."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, inputs, target, mode='tensor'):
        pred = self.fc(inputs)  # (N, 1)
        if mode == 'loss':
            err = pred - target  # (N, 1)
            return dict(loss_mse=(err ** 2).mean(), loss_l1=err.abs().mean())
        return [dict(pred=p, target=t) for p, t in zip(pred, target)]


class MSE(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        self.results += [float((s['pred'] - s['target']) ** 2)
                         for s in data_samples]

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))


class Probe(Hook):
    """An independent record: the initial weights and every loss dict."""

    priority = 'VERY_HIGH'

    def __init__(self):
        self.init_state, self.outputs = None, []

    def before_train(self, runner):
        self.init_state = {k: v.clone()
                           for k, v in runner.model.state_dict().items()}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.outputs.append({k: float(v.detach()) for k, v in
                             outputs.items()})


def _runner(tmp_path, hook, max_iters=5, val_interval=5):
    return Runner(
        model=Regressor(),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=Points(), batch_size=4, num_workers=0,
                              sampler=dict(type='InfiniteSampler',
                                           shuffle=True),
                              collate_fn=dict(type='default_collate')),
        val_dataloader=dict(dataset=Points(n=5, seed=1), batch_size=2,
                            num_workers=0,
                            sampler=dict(type='DefaultSampler',
                                         shuffle=False),
                            collate_fn=dict(type='default_collate')),
        val_evaluator=dict(type=MSE),
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=val_interval),
        custom_hooks=[hook, Probe()],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook',
                                                        interval=100)),
        randomness=dict(seed=0),
        log_level='WARNING')


def test_records_losses_metrics_init_and_draws_bars(tmp_path, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, '__stderr__', stream)  # the hook's terminal
    record_file = tmp_path / 'rec' / 'record.json'
    init_file = tmp_path / 'init' / 'init.pth'
    hook = HOOKS.build(dict(type='DemoProgressHook', desc='toy run',
                            record_file=str(record_file),
                            init_checkpoint=str(init_file)))
    assert isinstance(hook, DemoProgressHook)
    runner = _runner(tmp_path, hook)
    runner.train()
    probe = next(h for h in runner.hooks if isinstance(h, Probe))

    # one record per iteration, the same numbers the loop handed to hooks
    assert [r['iter'] for r in hook.losses] == [1, 2, 3, 4, 5]
    for mine, ref in zip(hook.losses, probe.outputs):
        # no 'lambda': the toy model has no loss_lambda
        assert set(mine) - {'iter'} == {'loss', 'loss_mse', 'loss_l1'}
        for key in ('loss', 'loss_mse', 'loss_l1'):
            assert mine[key] == pytest.approx(ref[key], rel=1e-6)
        assert mine['loss'] == pytest.approx(mine['loss_mse'] +
                                             mine['loss_l1'], rel=1e-5)

    # the metrics of the final validation, against a plain recomputation
    val = Points(n=5, seed=1)
    with torch.no_grad():
        pred = runner.model.fc(val.x)  # (5, 1)
    expected = float(((pred - val.y) ** 2).mean())
    assert hook.metrics['toy/mse'] == pytest.approx(expected, rel=1e-5)

    # the saved initial weights are the weights before the first step
    saved = torch.load(init_file, weights_only=True)['state_dict']
    assert set(saved) == set(probe.init_state)
    for k, v in probe.init_state.items():
        assert torch.equal(saved[k], v), k
    assert not torch.equal(saved['fc.weight'], runner.model.fc.weight)

    assert hook.train_time > 0 and hook.val_time > 0
    record = json.loads(record_file.read_text())
    assert record['losses'] == hook.losses
    assert record['metrics']['toy/mse'] == pytest.approx(expected, rel=1e-5)

    text = stream.getvalue()
    assert 'toy run: 100%' in text and '5/5' in text
    assert 'toy run (val): 100%' in text and '3/3' in text  # 5 / batch 2


def test_validation_time_is_not_training_time(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, '__stderr__', io.StringIO())
    hook = DemoProgressHook(desc='v', enable_bar=False)
    runner = _runner(tmp_path, hook, max_iters=4, val_interval=2)
    runner.train()
    # two validations (iterations 2 and 4); the record lands in work_dir
    assert json.loads((tmp_path / 'demo_record.json').read_text())[
        'desc'] == 'v'
    assert sys.__stderr__.getvalue() == ''  # no bars when disabled
    assert hook.val_time > 0
    assert len(hook.losses) == 4


def test_bad_desc():
    with pytest.raises(TypeError, match='desc must be a str'):
        DemoProgressHook(desc=3)
