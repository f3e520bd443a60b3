"""Exercises of 09_fast_style: instance normalization; the perceptual loss of one batch; conditional
instance normalization."""
import numpy as np
import torch

from ...fast_style import conditional_instance_norm, instance_norm, perceptual_terms
from ...style import gram_matrix
from ..registry import Case, register


def _tensor(rng, *shape, relu=False, scale=1.0, shift=0.0):
    t = torch.from_numpy(rng.normal(shift, scale, shape)).float()
    return t.clamp_min(0) if relu else t


def _norm_cases(rng):
    cases = [Case(f"random batch {s}", (_tensor(rng, *s),)) for s in [(1, 3, 4, 5), (2, 8, 6, 6), (4, 2, 3, 7)]]
    cases.append(Case("large offset and scale (mean 50, std 10)", (_tensor(rng, 2, 3, 5, 5, scale=10, shift=50),)))
    cases.append(Case("eps=0.1 on a small-variance input", (_tensor(rng, 1, 4, 4, 4, scale=0.1),), {"eps": 0.1}))
    cases.append(Case("a constant channel (variance 0: the output is 0, not NaN)", (torch.full((1, 2, 3, 3), 0.7),)))
    return cases


def _loss_cases(rng):
    cases = []
    for n, ws in [(1, None), (2, None), (3, {"content": 2.0, "style": 10.0, "tv": 0.5})]:
        layers = {"a": (4, 6, 6), "b": (6, 3, 3)}
        out = {l: _tensor(rng, n, *s, relu=True) for l, s in layers.items()}
        out["c"] = _tensor(rng, n, 5, 3, 3, relu=True)
        content = _tensor(rng, n, 5, 3, 3, relu=True)
        grams = {l: gram_matrix(_tensor(rng, 1, *s, relu=True)) for l, s in layers.items()}
        images = torch.from_numpy(rng.uniform(0, 1, (n, 3, 8, 8))).float()
        kw = {"weights": ws} if ws else {}
        cases.append(Case(f"batch of {n}, style layers a and b, content layer c, weights {ws or 'default'}",
                          (out, content, grams, images, "c"), kw))
    return cases


register("09.instance_norm", instance_norm, _norm_cases)
def _johnson_loss(out_features, content_features, style_grams, outputs, content_layer, weights=None):
    """Johnson et al.'s three terms: the course's training adds a `range` term, which the exercise leaves out."""
    weights = {**(weights or {}), "range": 0.0}
    return float(perceptual_terms(out_features, content_features, style_grams, outputs, content_layer, weights)["total"])


register("09.perceptual_loss", _johnson_loss, _loss_cases, source=perceptual_terms)


def _conditional_cases(rng):
    cases = []
    for n, c, s in [(1, 3, 2), (2, 4, 4), (3, 2, 5)]:
        x = _tensor(rng, n, c, 5, 4, scale=2.0, shift=1.0)
        gammas, betas = _tensor(rng, s, c, shift=1.0), _tensor(rng, s, c)
        k = int(rng.integers(s))
        one_hot = torch.zeros(s)
        one_hot[k] = 1.0
        cases.append(Case(f"{n} image(s), {c} channels, {s} styles, style {k} alone", (x, gammas, betas, one_hot)))
    x, gammas, betas = _tensor(rng, 2, 3, 4, 4), _tensor(rng, 4, 3, shift=1.0), _tensor(rng, 4, 3)
    cases.append(Case("a blend of styles 0 and 2 (weights 0.3 and 0.7)", (x, gammas, betas,
                                                                       torch.tensor([0.3, 0.0, 0.7, 0.0]))))
    mix = torch.from_numpy(rng.dirichlet(np.ones(4), size=2)).float()
    cases.append(Case("one blend per image: mix of shape (N, S)", (x, gammas, betas, mix)))
    cases.append(Case("eps=0.1", (x, gammas, betas, torch.tensor([0.0, 1.0, 0.0, 0.0])), {"eps": 0.1}))
    return cases


register("09.conditional_instance_norm", conditional_instance_norm, _conditional_cases)
