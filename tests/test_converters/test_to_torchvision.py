# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Conversion to torchvision's ResNet, checked against a torchvision-layout
ResNet written here (torchvision itself cannot be installed beside torch
2.13): strict key/shape match, exact tensors, and identical features."""
import pytest
import torch
from torch import nn

from densecl_plugin.converters import (check_torchvision_resnet,
                                       convert_to_torchvision,
                                       torchvision_resnet_shapes)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    """torchvision's V1.5 bottleneck: the stride sits in the 3x3 conv."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class TorchvisionResNet(nn.Module):
    """torchvision.models.resnet.ResNet's module tree and forward."""
    ARCHS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
             50: (Bottleneck, [3, 4, 6, 3]),
             101: (Bottleneck, [3, 4, 23, 3]),
             152: (Bottleneck, [3, 8, 36, 3])}

    def __init__(self, depth, num_classes=1000):
        super().__init__()
        block, layers = self.ARCHS[depth]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, n in enumerate(layers):
            setattr(self, f'layer{i + 1}', self._make_layer(
                block, 64 * 2**i, n, stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride,
                          bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
def test_layout_spec_matches_torchvision_module(depth):
    with torch.device('meta'):
        want = {k: tuple(v.shape)
                for k, v in TorchvisionResNet(depth).state_dict().items()
                if not k.startswith('fc.')}
    assert torchvision_resnet_shapes(depth) == want


@pytest.mark.parametrize('depth', [18, 50])
def test_roundtrip_into_torchvision_layout(depth, resnet18_sd, resnet50_sd,
                                           make_checkpoint, tmp_path):
    sd = resnet18_sd if depth == 18 else resnet50_sd
    src, dst = str(tmp_path / 'full.pth'), str(tmp_path / 'tv.pth')
    torch.save(make_checkpoint('densecl_plugin', sd), src)
    convert_to_torchvision(src, dst)
    tv_sd = torch.load(dst, weights_only=True)
    tv = TorchvisionResNet(depth)
    result = tv.load_state_dict(tv_sd, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    assert result.unexpected_keys == []
    got = tv.state_dict()
    for k in sd:
        assert torch.equal(got[k], sd[k]), k


def test_same_features_as_mmdet_resnet(make_checkpoint, tmp_path):
    """The converted weights compute what the source network computes."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    src_net = ResNet(50, out_indices=(3, ), style='pytorch')
    with torch.no_grad():  # non-trivial BN statistics
        for m in src_net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.1, 0.1)
    src_net.eval()
    src, dst = str(tmp_path / 'full.pth'), str(tmp_path / 'tv.pth')
    torch.save(make_checkpoint('densecl_plugin', src_net.state_dict()), src)
    convert_to_torchvision(src, dst)
    tv = TorchvisionResNet(50)
    tv.load_state_dict(torch.load(dst), strict=False)
    tv.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = src_net(x)[-1]  # 2x2048x2x2
        got = tv.features(x)  # 2x2048x2x2
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_rejects_a_deep_stem_resnet():
    from mmdet.models.backbones import ResNet
    sd = {k: v for k, v in ResNet(18).state_dict().items()}
    sd['stem.0.weight'] = sd.pop('conv1.weight')
    with pytest.raises(ValueError) as err:
        check_torchvision_resnet(sd, source='v1c')
    assert "missing (1): ['conv1.weight']" in str(err.value)
    assert "unexpected (1): ['stem.0.weight']" in str(err.value)


def test_rejects_wrong_shapes_and_unknown_depths(resnet18_sd):
    sd = dict(resnet18_sd)
    sd['layer1.0.conv1.weight'] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(ValueError, match='wrong shape'):
        check_torchvision_resnet(sd)
    sd = {k: v for k, v in resnet18_sd.items()
          if not k.startswith('layer4.1.')}
    with pytest.raises(ValueError, match=r'basic blocks per stage '
                                         r'\(2, 2, 2, 1\)'):
        check_torchvision_resnet(sd)


def test_cli(resnet18_sd, run_converter):
    dst, out = run_converter('densecl_to_torchvision', 'moco', resnet18_sd,
                             'tv.pth')
    assert 'ResNet-18' in out
    TorchvisionResNet(18).load_state_dict(
        {**torch.load(dst), 'fc.weight': torch.zeros(1000, 512),
         'fc.bias': torch.zeros(1000)}, strict=True)
