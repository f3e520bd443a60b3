"""Exercises of 09_fast_style: instance normalization; the perceptual loss of one batch."""
import torch

from ..fast_style import instance_norm, perceptual_terms
from ..grading import Case, register
from ..style import gram_matrix


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
register("09.perceptual_loss", lambda *a, **k: float(perceptual_terms(*a, **k)["total"]), _loss_cases,
         source=perceptual_terms)
