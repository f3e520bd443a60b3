"""Exercises of 06_inversion: the total-variation regularizer; the inversion loss at one layer; the gradient
of total variation worked out by hand (the loop itself is notebook 05's, written once there)."""
import torch

from ...inversion import inversion_loss
from ...layers import activations
from ...optimize.objectives import tv_penalty
from ...testing import tiny_cnn
from ..registry import Case, register


def _tv_cases(rng):
    cases = []
    for beta in (2.0, 1.0, 3.0):
        n, c, h, w = 1, 3, *(int(v) for v in rng.integers(3, 16, 2))
        x = torch.from_numpy(rng.uniform(0, 1, (n, c, h, w))).float()
        cases.append(Case(f"random (1, 3, {h}, {w}) image, beta={beta:g}", (x, beta)))
    cases.append(Case("a constant image has no variation", (torch.full((1, 3, 5, 5), 0.3), 2.0)))
    cases.append(Case("a ramp x[i, j] = j (one channel, 3x3)", (torch.arange(3.0).repeat(3, 1).view(1, 1, 3, 3), 2.0)))
    cases.append(Case("a batch of two images", (torch.from_numpy(rng.uniform(0, 1, (2, 3, 6, 7))).float(), 2.0)))
    return cases


def _loss_cases(rng):
    cases = []
    for layer, size in (("relu1", 16), ("relu2", 20), ("conv2", 12)):
        net = tiny_cnn(int(rng.integers(1 << 30)), scale=0.3)
        x = torch.from_numpy(rng.uniform(0, 1, (1, 3, size, size))).float()
        x0 = torch.from_numpy(rng.uniform(0, 1, (1, 3, size, size))).float()
        cases.append(Case(f"layer {layer!r} of a small CNN, {size}x{size} images",
                          (net, x, layer, activations(net, x0, layer))))
    net = tiny_cnn(5, scale=0.3)
    x = torch.from_numpy(rng.uniform(0, 1, (1, 3, 16, 16))).float()
    cases.append(Case("x is the image the target came from: the loss is 0", (net, x, "relu1", activations(net, x, "relu1"))))
    return cases


register("06.tv_penalty", tv_penalty, _tv_cases)
register("06.inversion_loss", inversion_loss, _loss_cases)


# ---------------------------------------------------------------- Exercise 3: the gradient of TV, by hand

def tv_gradient(x):
    """dR_TV/dx for beta = 2, by autograd: the reference for the gradient that students work out by hand."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(tv_penalty(x, 2.0), x)
    return grad


def _tv_gradient_cases(rng):
    cases = []
    for n, c, h, w in [(1, 3, 5, 6), (1, 1, 2, 2), (2, 3, 4, 9), (1, 3, 11, 7)]:
        x = torch.from_numpy(rng.uniform(0, 1, (n, c, h, w))).float()
        cases.append(Case(f"random ({n}, {c}, {h}, {w}) image", (x,)))
    cases.append(Case("a ramp x[i, j] = j (one channel, 3x3): -0.5, 0, 0.5 in the first two rows, 0 in the last",
                      (torch.arange(3.0).repeat(3, 1).view(1, 1, 3, 3),)))
    cases.append(Case("a constant image: the gradient is 0", (torch.full((1, 3, 4, 4), 0.7),)))
    return cases


register("06.tv_gradient", tv_gradient, _tv_gradient_cases)
