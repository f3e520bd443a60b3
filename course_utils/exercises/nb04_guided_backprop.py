"""Exercises of 04_guided_backprop: the guided ReLU backward rule, Grad-CAM from activations and gradients."""
import torch

from ..attribution import grad_cam_from
from ..backprop_rules import relu_backward
from ..grading import Case, register


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


register("04.guided_relu_backward", guided_relu_backward, _relu_cases)
register("04.grad_cam_from", grad_cam_from, _grad_cam_cases)
