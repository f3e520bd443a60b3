"""Exercises of 06_inversion: the total-variation regularizer; the inversion loss at one layer."""
import torch

from ..grading import Case, register
from ..inversion import inversion_loss
from ..objectives import tv_penalty
from .nb05_gradient_ascent import tiny_classifier


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
    for layer, size in (("1", 16), ("3", 20), ("2", 12)):
        net = tiny_classifier(int(rng.integers(1 << 30)))
        x = torch.from_numpy(rng.uniform(0, 1, (1, 3, size, size))).float()
        x0 = torch.from_numpy(rng.uniform(0, 1, (1, 3, size, size))).float()
        with torch.no_grad():
            target = net[: int(layer) + 1](x0)
        cases.append(Case(f"layer {layer!r} of a small CNN, {size}x{size} images", (net, x, layer, target)))
    net = tiny_classifier(5)
    x = torch.from_numpy(rng.uniform(0, 1, (1, 3, 16, 16))).float()
    with torch.no_grad():
        target = net[:2](x)
    cases.append(Case("x is the image the target came from: the loss is 0", (net, x, "1", target)))
    return cases


register("06.tv_penalty", tv_penalty, _tv_cases)
register("06.inversion_loss", inversion_loss, _loss_cases)
