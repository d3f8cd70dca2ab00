# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The ONNX export, run by onnxruntime on real photos against our backbone."""
import numpy as np
import onnx  # onnx, onnxscript, onnxruntime: test extras (requirements/)
import onnxruntime as ort
import pytest
import torch

from densecl_plugin.converters import convert_to_onnx
from densecl_plugin.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD


def _session(path: str):
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


@pytest.fixture(scope='module')
def exported(ours, tmp_path_factory):
    """The shipped ResNet-18 CPU recipe's model, exported once."""
    our = ours(18)
    dst = str(tmp_path_factory.mktemp('onnx') / 'r18.onnx')
    return our, dst, convert_to_onnx(our.checkpoint, dst, example_size=64)


def test_onnxruntime_computes_ours_on_real_images(exported):
    our, dst, out = exported
    assert (out.depth, out.channels, out.num_tensors) == (18, 512, 120)
    sess = _session(dst)
    assert [i.name for i in sess.get_inputs()] == ['image']
    assert [o.name for o in sess.get_outputs()] == ['c5', 'pooled']
    c5, pooled = sess.run(None, {'image': our.x.numpy()})  # 7 photos 96x128
    assert c5.shape == (7, 512, 3, 4) and pooled.shape == (7, 512)
    diff_c5 = np.abs(c5 - our.c5.numpy()).max()
    diff_pooled = np.abs(pooled - our.pooled.numpy()).max()
    assert diff_c5 < 1e-4 * max(1.0, float(our.c5.abs().max()))
    assert diff_pooled < 1e-4 * max(1.0, float(our.pooled.abs().max()))
    assert our.pooled.std() > 0.01  # not a degenerate comparison


def test_batch_and_size_are_dynamic(exported):
    """One photo at another size than the example's (64) and the test's,
    not a multiple of 32: C5 has ceil(H/32) x ceil(W/32) cells."""
    our, dst, _ = exported
    x = torch.nn.functional.interpolate(our.x[2:3], size=(100, 77),
                                        mode='bilinear', align_corners=False)
    c5, pooled = _session(dst).run(None, {'image': x.numpy()})
    with torch.no_grad():
        want = our.model.backbone(x)[-1]
    assert c5.shape == (1, 512, 4, 3)
    np.testing.assert_allclose(c5, want.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pooled, want.mean(dim=(2, 3)).numpy(),
                               rtol=1e-4, atol=1e-4)


def test_metadata_says_how_to_feed_it(exported):
    _, dst, out = exported
    model = onnx.load(dst)
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert [float(v) for v in meta['mean'].split(',')] == list(IMAGENET_MEAN)
    assert [float(v) for v in meta['std'].split(',')] == list(IMAGENET_STD)
    assert meta['source'] == 'iter_8.pth' and 'RGB' in meta['input']
    assert out.opset == next(o.version for o in model.opset_import
                             if o.domain == '')


def test_cli_and_a_resnet50(run_converter, bn_perturbed):
    """The command line on an authors'-layout ResNet-50 checkpoint: its ONNX
    graph computes what mmdet's ResNet-50 with the same weights computes."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(50, out_indices=(3, ))
    net.eval()  # mmdet's ResNet.train() returns None
    bn_perturbed(net)
    dst, printed = run_converter('densecl_to_onnx', 'openselfsup',
                                 net.state_dict(), 'r50.onnx')
    assert printed.startswith(f'{dst}: ONNX ResNet-50 backbone (opset ')
    assert 'pooled (N, 2048)' in printed
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        want = net(x)[-1]
    c5, _ = _session(dst).run(None, {'image': x.numpy()})
    assert c5.shape == (2, 2048, 2, 3)
    np.testing.assert_allclose(c5, want.numpy(), rtol=1e-4, atol=1e-4)


def test_rejects_a_deep_stem_backbone(resnet18_sd, make_checkpoint, tmp_path):
    sd = dict(resnet18_sd)
    sd['stem.0.weight'] = sd.pop('conv1.weight')
    src = str(tmp_path / 'v1c.pth')
    torch.save(make_checkpoint('densecl_plugin', sd), src)
    with pytest.raises(ValueError, match=r"missing \(1\): \['conv1.weight'\]"):
        convert_to_onnx(src, str(tmp_path / 'out.onnx'))
    assert not (tmp_path / 'out.onnx').exists()
