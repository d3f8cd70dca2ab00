# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The study's frozen-feature dense probe (densecl_lab/study/dense_probe.py): the per-pixel
logistic regression against a NumPy gradient-descent reference (with its own bilinear
upsampling), separable vs pure-noise features, the box masks against hand-made cases, the scores
against a loop, and a real run of a tiny ResNet on real nuclei and tree tiles."""
import math
import os.path as osp
import re

import numpy as np
import pytest
import torch

from densecl_lab.study.dense_probe import (DENSE_SETS, LEVELS, boxes_mask,
                                           dense_probe, fit_pixel_classifier,
                                           level_features, read_voc_boxes,
                                           segmentation_scores, split_files)


# the classifier against an independent reference -------------------------------------------
def _bilinear_matrix(n_in, n_out):
    """(n_out, n_in) weights of 1-D bilinear resizing, half-pixel centres, edges clamped."""
    mat = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        w = src - i0
        mat[i, i0] += 1 - w
        mat[i, i1] += w
    return mat


def _reference_fit(feats, labels, weight_decay, steps=6000, lr=0.5):
    """Mean cross-entropy over label pixels + wd * ||W||^2 by plain gradient descent (NumPy).

    Features ``(N, C, h, w)`` are standardised per channel (ddof 1) on their grid, then
    upsampled to the label grid ``(H, W)`` with explicit bilinear matrices.
    """
    n, c, h, w = feats.shape
    big_h, big_w = labels.shape[1:]
    mu = feats.mean(axis=(0, 2, 3))
    sd = feats.transpose(1, 0, 2, 3).reshape(c, -1).std(axis=1, ddof=1) + 1e-6
    z = (feats - mu[None, :, None, None]) / sd[None, :, None, None]
    rows, cols = _bilinear_matrix(h, big_h), _bilinear_matrix(w, big_w)
    up = np.einsum('Hh,nchw,Ww->nHWc', rows, z, cols).reshape(-1, c)  # (P, C)
    y = labels.reshape(-1)
    k = int(labels.max()) + 1
    onehot = np.eye(k)[y]
    wgt, bias = np.zeros((c, k)), np.zeros(k)

    def probs(x):
        logits = x @ wgt + bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    for _ in range(steps):
        g = (probs(up) - onehot) / len(y)
        wgt -= lr * (up.T @ g + 2 * weight_decay * wgt)
        bias -= lr * g.sum(axis=0)
    p = probs(up)
    loss = -np.log(p[np.arange(len(y)), y]).mean() + weight_decay * (wgt ** 2).sum()
    return p, loss


def test_classifier_matches_gradient_descent_reference():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(3, 4, 3, 3)) * rng.uniform(0.5, 3, size=(1, 4, 1, 1)) + 2.0
    # a label map at twice the feature grid, loosely tied to the features
    score = np.einsum('nchw,c->nhw', feats, rng.normal(size=4))
    labels = (np.kron(score, np.ones((2, 2))) + rng.normal(size=(3, 6, 6)) > np.median(score))
    labels = labels.astype(np.int64)
    wd = 1e-2
    ref_p, ref_loss = _reference_fit(feats, labels, wd)
    clf = fit_pixel_classifier(torch.tensor(feats, dtype=torch.float32), torch.from_numpy(labels),
                               2, wd, max_iter=200)
    with torch.no_grad():
        logits = clf(torch.tensor(feats, dtype=torch.float32), (6, 6))  # (N, 2, 6, 6)
    p = torch.softmax(logits, 1).permute(0, 2, 3, 1).reshape(-1, 2).double().numpy()
    loss = -np.log(p[np.arange(len(p)), labels.reshape(-1)]).mean() + \
        wd * float(clf.conv.weight.detach().double().pow(2).sum())
    assert abs(loss - ref_loss) < 1e-4, (loss, ref_loss)
    np.testing.assert_allclose(p, ref_p, atol=5e-3)
    # the zero init moved: the labels are not all one class
    assert float(clf.conv.weight.detach().abs().sum()) > 0


def _synthetic(rng, n, c=8, hw=6, direction=None):
    feats = rng.normal(size=(n, c, hw, hw)).astype(np.float32)
    if direction is None:  # labels independent of the features
        labels = rng.integers(0, 2, size=(n, hw, hw))
    else:  # labels a linear function of the features
        labels = (np.einsum('nchw,c->nhw', feats, direction) > 0.3).astype(np.int64)
    return torch.from_numpy(feats), torch.from_numpy(labels.astype(np.int64))


def test_separable_features_score_high_and_noise_about_chance():
    rng = np.random.default_rng(1)
    direction = rng.normal(size=8)
    x_tr, y_tr = _synthetic(rng, 20, direction=direction)
    x_va, y_va = _synthetic(rng, 20, direction=direction)
    clf = fit_pixel_classifier(x_tr, y_tr, 2, weight_decay=1e-4, max_iter=100)
    sep = segmentation_scores(clf.predict(x_va, (6, 6)), y_va)
    assert sep['mIoU'] > 0.95 and sep['pixel_acc'] > 0.97, sep

    x_tr, y_tr = _synthetic(rng, 40)
    x_va, y_va = _synthetic(rng, 40)
    clf = fit_pixel_classifier(x_tr, y_tr, 2, weight_decay=1e-4, max_iter=100)
    noise = segmentation_scores(clf.predict(x_va, (6, 6)), y_va)
    # 1440 val pixels: chance accuracy 0.5 (sd 0.013), chance mIoU about 1/3
    assert 0.44 < noise['pixel_acc'] < 0.56, noise
    assert noise['mIoU'] < 0.45, noise


# labels ------------------------------------------------------------------------------------
def test_boxes_mask_by_hand():
    # pixel edges: x 1..3 covers columns 1, 2; y 0..2 covers rows 0, 1
    expected = np.array([[0, 1, 1, 0],
                         [0, 1, 1, 0],
                         [0, 0, 0, 0]], np.uint8)
    assert np.array_equal(boxes_mask(np.array([[1, 0, 3, 2]]), 3, 4), expected)
    # a fractional box holds the pixels whose centres it holds; one past the border is clipped;
    # overlapping boxes stay 1; no box: all 0
    # (centres 0.5, 1.5, ...: the first box holds column 1 of rows 0-1, the second columns 2-3
    # of rows 1-2, the third column 1 of row 0 again)
    got = boxes_mask(np.array([[0.6, 0.4, 2.4, 1.6], [2.5, 1.5, 9.0, 9.0],
                               [1.0, 0.0, 2.0, 1.0]]), 3, 4)
    assert np.array_equal(got, np.array([[0, 1, 0, 0],
                                         [0, 1, 1, 1],
                                         [0, 0, 1, 1]], np.uint8)), got
    assert boxes_mask(np.zeros((0, 4)), 2, 2).sum() == 0


def test_read_voc_boxes_one_based_inclusive(tmp_path):
    xml = tmp_path / 'a.xml'
    xml.write_text(
        '<annotation><size><width>4</width><height>3</height><depth>3</depth></size>'
        '<object><name>Tree</name><bndbox><xmin>2</xmin><ymin>1</ymin><xmax>3</xmax>'
        '<ymax>2</ymax></bndbox></object></annotation>')
    boxes, h, w = read_voc_boxes(str(xml))
    assert (h, w) == (3, 4)
    assert boxes.tolist() == [[1.0, 0.0, 3.0, 2.0]]  # VOC columns 2..3 = 0-based 1..2
    assert boxes_mask(boxes, h, w)[:2, 1:3].all() and boxes_mask(boxes, h, w).sum() == 4


# scores ------------------------------------------------------------------------------------
def test_segmentation_scores_against_loops():
    rng = np.random.default_rng(2)
    pred, gt = rng.integers(0, 3, size=(4, 5, 6)), rng.integers(0, 3, size=(4, 5, 6))
    got = segmentation_scores(torch.from_numpy(pred), torch.from_numpy(gt), 3)
    ious = []
    for c in range(3):
        inter = union = 0
        for p, g in zip(pred.reshape(-1), gt.reshape(-1)):
            inter += (p == c) and (g == c)
            union += (p == c) or (g == c)
        ious.append(inter / union)
    correct = sum(int(p == g) for p, g in zip(pred.reshape(-1), gt.reshape(-1)))
    assert np.allclose(got['iou'], ious)
    assert math.isclose(got['mIoU'], sum(ious) / 3)
    assert math.isclose(got['pixel_acc'], correct / pred.size)
    # a class in neither map is left out of the mean; one predicted but absent has IoU 0
    only0 = segmentation_scores(torch.zeros(2, 2, dtype=torch.long),
                                torch.tensor([[0, 0], [0, 1]]), 3)
    assert only0['iou'] == [0.75, 0.0, None] and only0['mIoU'] == 0.375
    assert only0['pixel_acc'] == 0.75


# a real run --------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_demo_data(tmp_path_factory):
    """The demo's two labelled layouts, small: 8 tree tiles, the 16 nuclei tiles at 64 px."""
    from densecl_lab.data_prep import build_voc_detection, data_cache_dir
    from densecl_lab.data_prep.binary_segmentation import \
        build_binary_segmentation
    root = str(tmp_path_factory.mktemp('dense_probe_data'))
    det = build_voc_detection(root, tile_size=200, out_size=96, max_tiles=8,
                              cache_dir=data_cache_dir())
    seg = build_binary_segmentation(osp.join(root, 'nuclei'), tile_size=128, out_size=64,
                                    cache_dir=data_cache_dir())
    return dict(detection=dict(data_root=det.data_root), segmentation=dict(data_root=seg.data_root))


def _box_share(xml_files):
    """The share of pixels inside a box, by a plain loop over the XML numbers."""
    inside = total = 0
    for path in xml_files:
        text = open(path).read()
        w, h = (int(re.search(f'<{k}>(\\d+)</{k}>', text).group(1)) for k in ('width', 'height'))
        boxes = [tuple(int(v) for v in m) for m in re.findall(
            r'<xmin>(\d+)</xmin>\s*<ymin>(\d+)</ymin>\s*<xmax>(\d+)</xmax>\s*<ymax>(\d+)</ymax>',
            text)]
        for r in range(1, h + 1):  # VOC 1-based inclusive pixels
            for c in range(1, w + 1):
                inside += any(x1 <= c <= x2 and y1 <= r <= y2 for x1, y1, x2, y2 in boxes)
        total += w * h
    return inside / total


def test_real_run_of_a_tiny_resnet(tiny_demo_data):
    from tiny_models import build_tiny_model
    files = split_files(tiny_demo_data, 'trees')
    assert [len(files['train']), len(files['val'])] == [6, 2]  # VOC07+12 trainval / VOC07 test
    nuclei = split_files(tiny_demo_data, 'nuclei')
    assert [len(nuclei['train']), len(nuclei['val'])] == [12, 4]
    assert all(osp.basename(a) == osp.basename(b) for a, b in nuclei['val'])

    torch.manual_seed(0)
    model = build_tiny_model('MoCoV2', base_channels=8)
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    out_indices = model.backbone.out_indices
    res = dense_probe(model, tiny_demo_data, 64, mean, std, max_iter=15)
    assert model.backbone.out_indices == out_indices  # restored
    assert set(res['sets']) == set(DENSE_SETS) and res['levels'] == list(LEVELS)
    for name, r in res['sets'].items():
        assert (r['num_train'], r['num_val']) == ((12, 4) if name == 'nuclei' else (6, 2))
        assert r['C4']['grid'] == [4, 4] and r['C5']['grid'] == [2, 2]  # 64 px: stride 16 / 32
        for lv in LEVELS:
            assert 0.0 <= r[lv]['mIoU'] <= 1.0 and 0.0 <= r[lv]['pixel_acc'] <= 1.0
            assert len(r[lv]['iou']) == 2
    # the tree masks are the boxes (nearest-resized 96 -> 64 px: the share moves a little)
    ref = _box_share([x for _, x in files['val']])
    assert abs(res['sets']['trees']['foreground']['val'] - ref) < 0.03, ref
    # deterministic
    again = dense_probe(model, tiny_demo_data, 64, mean, std, max_iter=15)
    assert again == res

    # the features are the backbone's stage outputs on the normalised RGB images
    import cv2
    img = cv2.imread(files['val'][0][0])[..., ::-1].copy()  # RGB (a colour tree tile)
    feats = level_features(model, img[None], mean, std)
    x = (torch.from_numpy(img).float().permute(2, 0, 1)[None] - torch.tensor(mean).view(1, 3, 1, 1)
         ) / torch.tensor(std).view(1, 3, 1, 1)
    bb = model.backbone
    with torch.no_grad():
        h = bb.maxpool(bb.relu(bb.norm1(bb.conv1(x))))
        stages = []
        for name in bb.res_layers:
            h = getattr(bb, name)(h)
            stages.append(h)
    assert torch.allclose(feats['C4'], stages[2], atol=1e-5)
    assert torch.allclose(feats['C5'], stages[3], atol=1e-5)
