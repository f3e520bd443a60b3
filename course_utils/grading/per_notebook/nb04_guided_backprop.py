"""Exercises of 04_guided_backprop: the guided ReLU backward rule, Grad-CAM from activations and gradients,
Zeiler & Fergus's deconvnet projection with switches."""
from collections import OrderedDict

import torch
from torch import nn

from ...backprop.attribution import grad_cam_from
from ...backprop.rules import relu_backward
from ...digits import DigitsCNN
from ...seeding import forked
from ...zeiler_fergus import project
from ..registry import Case, register


def guided_relu_backward(x, grad_output):
    """What a ReLU passes down under guided backprop: grad_output where x > 0 and grad_output > 0, else 0."""
    return relu_backward(x, grad_output, rule="guided")


def _relu_cases(rng):
    cases = []
    for shape in [(5,), (2, 3, 4, 4), (1, 8, 7, 7)]:
        x = torch.from_numpy(rng.normal(size=shape)).float()
        g = torch.from_numpy(rng.normal(size=shape)).float()
        cases.append(Case(f"random x and gradient of shape {shape}", (x, g)))
    cases.append(Case("x exactly 0 (the unit is off: nothing passes)", (torch.zeros(4), torch.ones(4))))
    cases.append(Case("all gradients negative", (torch.ones(2, 3), -torch.ones(2, 3))))
    cases.append(Case("hand-worked: x=[-1, 2, 3], g=[5, -1, 4] -> [0, 0, 4]",
                      (torch.tensor([-1.0, 2.0, 3.0]), torch.tensor([5.0, -1.0, 4.0]))))
    return cases


def _grad_cam_cases(rng):
    cases = []
    for n, k, h, w in [(1, 4, 3, 3), (2, 16, 7, 7), (3, 8, 2, 5)]:
        a = torch.from_numpy(rng.random((n, k, h, w))).float() * 6  # ReLU6 activations are >= 0
        g = torch.from_numpy(rng.normal(size=(n, k, h, w))).float()
        cases.append(Case(f"activations and gradients of shape {(n, k, h, w)}", (a, g)))
    a = torch.ones(1, 2, 2, 2)
    cases.append(Case("all weights negative: the map is all 0 after the ReLU", (a, -torch.ones(1, 2, 2, 2))))
    cases.append(Case("hand-worked: weights (1, -1)",
                      (torch.tensor([[[[1.0, 2.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, -1.0]]]]),
                       torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[-4.0, 0.0], [0.0, 0.0]]]]))))
    return cases


register("04.guided_relu_backward", guided_relu_backward, _relu_cases, source=(relu_backward,))
register("04.grad_cam_from", grad_cam_from, _grad_cam_cases)


def _digits_net(seed):
    with forked(seed):
        return DigitsCNN().eval().requires_grad_(False)


def _projection_cases(rng):
    cases = []
    for layer, channel, n in [("relu1", 3, 1), ("pool1", 10, 2), ("conv2", 7, 1), ("relu2", 20, 3), ("pool2", 31, 2)]:
        seed = int(rng.integers(1000))
        x = torch.from_numpy(rng.random((n, 1, 28, 28))).float()
        cases.append(Case(f"{n} random 28x28 digit image(s), a digits CNN drawn from seed {seed}, {layer} "
                          f"channel {channel}", (_digits_net(seed), x, layer, channel)))
    x = torch.tensor([[[[0.1, 0.5, 0.0, 0.02], [0.2, 0.3, 0.09, 0.01], [0.0, 0.0, 0.7, 0.0], [0.0, 0.05, 0.0, 0.0]]]])
    cases.append(Case("hand-worked: one 2x2 max pool; the strongest unit is 0.7, its switch at (2, 2)",
                      (nn.Sequential(OrderedDict([("pool", nn.MaxPool2d(2))])), x, "pool", 0)))
    return cases


register("04.zf_projection", project, _projection_cases, atol=1e-5, rtol=1e-4)
