"""Exercises of 05_gradient_ascent: one gradient-ascent step with the L2 penalty; clipping small pixels;
the diversity term."""
import torch

from ..ascent import ascent_step
from ..grading import Case, register
from ..objectives import gram_similarity
from ..testing import tiny_cnn
from ..transforms import clip_small_pixels


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
