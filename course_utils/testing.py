"""Tiny models for the tests and the graded exercises' cases: milliseconds instead of seconds.

Each is drawn from its `seed` alone (torch's global generator is left as it was), and comes back in
eval mode with frozen parameters, like the course's ImageNet models (`models.load_model`).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .images import unit_images
from .seeding import forked, generator


def tiny_cnn(seed=0, classes=1000, width=16, channels=8, act=nn.ReLU, scale=None, bn=False,
             dtype=torch.float32) -> nn.Sequential:
    """conv1 (3 -> channels, 3x3) [bn1] relu1, conv2 (channels -> width, 3x3, stride 2) relu2, pool, flat,
    fc (width -> classes).

    scale=None keeps PyTorch's default initialization; scale=s draws every parameter from N(0, s^2),
    which gives larger gradients (the exercise checks compare gradients, and tiny ones hide mistakes).
    act=nn.ReLU6 gives the unit of the course's EfficientNet-Lite.
    """
    with forked(seed):
        first = [("conv1", nn.Conv2d(3, channels, 3, padding=1))] + ([("bn1", nn.BatchNorm2d(channels))] if bn else [])
        model = nn.Sequential(OrderedDict(first + [
            ("relu1", act()), ("conv2", nn.Conv2d(channels, width, 3, padding=1, stride=2)), ("relu2", act()),
            ("pool", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(width, classes))]))
    model = model.to(dtype)
    if scale is not None:
        g = generator(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * scale)
    return unit_images(model.eval().requires_grad_(False))  # a stand-in for the course's image models


def tiny_linear(seed=0, size=8, classes=10, channels=3) -> nn.Sequential:
    """A linear classifier of (N, channels, size, size) images: flat, fc; default initialization."""
    with forked(seed):
        model = nn.Sequential(OrderedDict([("flat", nn.Flatten()), ("fc", nn.Linear(channels * size * size, classes))]))
    return unit_images(model.eval().requires_grad_(False))
