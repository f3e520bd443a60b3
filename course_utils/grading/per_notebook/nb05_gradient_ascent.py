"""Exercises of 05_gradient_ascent: one gradient-ascent step with the L2 penalty; clipping small pixels;
the diversity term; the whole class-visualization loop (judged by what it reaches)."""
import torch

from ...ascent import ascent_step
from ...images import noise_image
from ...labels import class_index
from ...optimize.objectives import gram_similarity
from ...optimize.transforms import clip_small_pixels, gaussian_blur
from ...testing import tiny_cnn
from ..registry import Case, reaches, register


def tiny_classifier(seed):
    """A small random CNN with 1000 outputs: fast stand-in for the ImageNet model in the checks."""
    return tiny_cnn(int(seed), 1000, width=16, scale=0.3)


def _ascent_cases(rng):
    cases = []
    for k, (size, lr, lam) in enumerate([(16, 0.1, 1.0), (24, 0.05, 10.0), (12, 0.5, 0.0)]):
        seed = int(rng.integers(1 << 30))
        x = torch.from_numpy(rng.uniform(0.1, 0.9, (1, 3, size, size))).float()
        target = int(rng.integers(1000))
        cases.append(Case(f"{size}x{size} image, class {target}, lr={lr}, l2_weight={lam}",
                          (tiny_classifier(seed), x, target, lr, lam)))
    x = torch.from_numpy(rng.uniform(0, 1, (1, 3, 16, 16))).float()
    cases.append(Case("class given by name ('ostrich')", (tiny_classifier(7), x, "ostrich", 0.1, 1.0)))
    cases.append(Case("a large step: the result must be clamped to [0, 1]", (tiny_classifier(3), x, 5, 50.0, 1.0)))
    return cases


def _clip_cases(rng):
    cases = []
    for p in (10.0, 50.0, 90.0):
        h, w = (int(v) for v in rng.integers(4, 20, 2))
        x = torch.from_numpy(rng.uniform(0, 1, (1, 3, h, w))).float()
        cases.append(Case(f"{h}x{w} image, percentile {p:g}", (x, p)))
    x = torch.from_numpy(rng.uniform(0, 1, (1, 3, 8, 8))).float()
    cases.append(Case("percentile 0: nothing is clipped", (x, 0.0)))
    cases.append(Case("percentile 100: all but the largest pixel are set to grey", (x, 100.0)))
    return cases


register("05.ascent_step", ascent_step, _ascent_cases)
register("05.clip_small_pixels", clip_small_pixels, _clip_cases)


def _diversity_cases(rng):
    cases = []
    for n, c, h, w in [(2, 4, 3, 3), (4, 8, 5, 4), (3, 16, 2, 2)]:
        acts = torch.from_numpy(rng.random((n, c, h, w))).float()
        cases.append(Case(f"activations of {n} images, shape {(n, c, h, w)}", (acts,)))
    a = torch.from_numpy(rng.random((1, 3, 4, 4))).float()
    cases.append(Case("three copies of one image: similarity N - 1 = 2", (a.repeat(3, 1, 1, 1),)))
    b = torch.zeros(2, 2, 3, 3)
    b[0, 0], b[1, 1] = 1.0, 1.0  # the two images use different channels: nothing in common
    cases.append(Case("two images that use different channels: 0", (b,)))
    cases.append(Case("one image alone: no pairs, 0", (torch.from_numpy(rng.random((1, 5, 3, 3))).float(),)))
    return cases


register("05.diversity", lambda acts: float(gram_similarity(acts)), _diversity_cases, source=gram_similarity,
         atol=1e-5)


# ---------------------------------------------------------------- Exercise 4: the whole loop

def visualize_class(model, target, size=32, steps=40, lr=0.05, l2_weight=1.0, blur_every=4, blur_sigma=0.5, seed=0):
    """A class visualization from faint noise (`images.noise_image(size, seed)`): Adam on the pixels to raise
    J(x) = S_c(x) - l2_weight * mean((x - 1/2)^2); after each step a Gaussian blur of `blur_sigma` when the
    step count is a multiple of `blur_every`, then the image clamped to [0, 1]. Returns the image (1, 3, size, size)."""
    x = noise_image(size, seed).requires_grad_(True)
    c = class_index(target)
    opt = torch.optim.Adam([x], lr=lr)
    for step in range(1, steps + 1):
        opt.zero_grad()
        objective = model(x)[0, c] - l2_weight * (x - 0.5).pow(2).mean()
        (-objective).backward()
        opt.step()
        with torch.no_grad():
            if blur_every and step % blur_every == 0:
                x.copy_(gaussian_blur(x, blur_sigma))
            x.clamp_(0, 1)
    return x.detach()


def _class_objective(case, image):
    model, target = case.args[:2]
    l2_weight = case.kwargs.get("l2_weight", 1.0)
    with torch.no_grad():
        return float(model(image)[0, class_index(target)] - l2_weight * (image - 0.5).pow(2).mean())


def _class_start(case):
    return noise_image(case.kwargs.get("size", 32), case.kwargs.get("seed", 0))


def _visualize_cases(rng):
    cases = []
    for size, steps, lr, l2 in [(32, 40, 0.05, 1.0), (24, 30, 0.1, 100.0), (40, 40, 0.03, 0.0)]:
        seed, target = int(rng.integers(1 << 30)), int(rng.integers(1000))
        cases.append(Case(f"a small random CNN, class {target}, {size}x{size}, {steps} steps, lr={lr}, l2_weight={l2}",
                          (tiny_classifier(seed), target),
                          dict(size=size, steps=steps, lr=lr, l2_weight=l2, seed=int(rng.integers(100)))))
    cases.append(Case("class given by name ('flamingo'), no blur", (tiny_classifier(11), "flamingo"),
                      dict(size=32, steps=40, lr=0.05, blur_every=0)))
    return cases


register("05.class_visualization", visualize_class, _visualize_cases,
         behaviour=reaches(_class_objective, _class_start, share=0.5))
