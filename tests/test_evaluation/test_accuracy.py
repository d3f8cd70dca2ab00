# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Top-k accuracy against counts worked out by hand."""
import pytest
import torch

from densecl_plugin.evaluation import Accuracy, topk_accuracy


def test_topk_by_hand():
    scores = torch.tensor([[0.1, 0.5, 0.2, 0.15, 0.05],   # order 1 2 3 0 4
                           [0.3, 0.1, 0.2, 0.25, 0.15],   # order 0 3 2 4 1
                           [0.2, 0.2, 0.1, 0.4, 0.1]])    # 3 first
    labels = torch.tensor([1, 2, 4])
    # sample 0: label 1 is 1st; sample 1: label 2 is 3rd; sample 2: label 4
    # ties with class 2 for the last places (4th or 5th)
    top1, top3, top5 = topk_accuracy(scores, labels, (1, 3, 5))
    assert top1 == pytest.approx(100 / 3)
    assert top3 == pytest.approx(200 / 3)
    assert top5 == pytest.approx(100)


def test_metric_over_batches_and_prefix():
    metric = Accuracy(topk=(1, 2))
    batches = [
        [dict(pred_score=torch.tensor([0.9, 0.1, 0.0]),
              gt_label=torch.tensor([0])),
         dict(pred_score=torch.tensor([0.2, 0.5, 0.3]),
              gt_label=torch.tensor([2]))],
        [dict(pred_score=torch.tensor([0.3, 0.1, 0.6]),
              gt_label=torch.tensor([1]))],
    ]
    # top-1 hits: sample 0 only; top-2 hits: samples 0 and 1 ({1, 2} holds
    # label 2), not sample 2 ({2, 0} misses label 1)
    for b in batches:
        metric.process({}, b)
    res = metric.evaluate(size=3)
    assert res == {'accuracy/top1': pytest.approx(100 / 3),
                   'accuracy/top2': pytest.approx(200 / 3)}


def test_bad_topk_is_explained():
    with pytest.raises(ValueError, match='positive ints'):
        Accuracy(topk=(0, ))
    with pytest.raises(ValueError, match='more guesses than the 2 classes'):
        topk_accuracy(torch.rand(4, 2), torch.zeros(4, dtype=torch.long),
                      (1, 5))
    with pytest.raises(KeyError, match='gt_label'):
        Accuracy().process({}, [dict(pred_score=torch.rand(3))])
