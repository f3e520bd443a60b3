"""Exercises of 06_inversion: the total-variation regularizer; the inversion loss at one layer; the whole
inversion loop (judged by the loss it reaches)."""
import torch

from ...images import noise_image
from ...inversion import inversion_loss
from ...layers import activations, capture
from ...optimize.objectives import tv_penalty
from ...testing import tiny_cnn
from ..registry import Case, reaches, register


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


# ---------------------------------------------------------------- Exercise 3: the whole loop

def invert_code(model, layer, target, size=32, steps=60, lr=0.05, tv_weight=0.05, seed=0):
    """Feature inversion from faint noise (`images.noise_image(size, seed)`): Adam on the pixels to lower
    ||phi(x) - target||^2 / ||target||^2 + tv_weight * TV(x) (`tv_penalty`, beta 2), the image clamped to
    [0, 1] after each step. Returns the image (1, 3, size, size)."""
    x = noise_image(size, seed).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        with capture(model, [layer], detach=False) as acts:
            model(x)
        code = acts[layer]
        loss = (code - target).pow(2).sum() / target.pow(2).sum() + tv_weight * tv_penalty(x)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach()


def _inversion_objective(case, image):
    model, layer, target = case.args
    with torch.no_grad():
        return -float(inversion_loss(model, image, layer, target) + case.kwargs["tv_weight"] * tv_penalty(image))


def _inversion_start(case):
    return noise_image(case.kwargs["size"], case.kwargs["seed"])


def _invert_cases(rng):
    cases = []
    # the last case's TV weight is large: a loop that leaves the regularizer out fails it
    for layer, size, steps, tv in [("relu1", 24, 40, 0.05), ("relu2", 32, 60, 0.5), ("conv2", 28, 50, 0.0),
                                   ("relu1", 24, 40, 5.0)]:
        net = tiny_cnn(int(rng.integers(1 << 30)), scale=0.3)
        photo = torch.from_numpy(rng.uniform(0, 1, (1, 3, size, size))).float()
        cases.append(Case(f"the code of a random {size}x{size} image at {layer!r} of a small CNN, {steps} steps, "
                          f"tv_weight={tv}", (net, layer, activations(net, photo, layer)),
                          dict(size=size, steps=steps, lr=0.05, tv_weight=tv, seed=int(rng.integers(100)))))
    return cases


register("06.invert_code", invert_code, _invert_cases, behaviour=reaches(_inversion_objective, _inversion_start, share=0.8))
