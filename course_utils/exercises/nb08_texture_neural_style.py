"""Exercises of 08_texture_neural_style: the Gram matrix, the style loss over layers, total variation."""
import torch

from ..grading import Case, register
from ..objectives import tv_penalty
from ..style import gram_matrix, style_loss


def _features(rng, n, c, h, w, relu=True):
    f = torch.from_numpy(rng.normal(0, 1, (n, c, h, w))).float()
    return f.clamp_min(0) if relu else f


def _gram_cases(rng):
    cases = []
    for c, h, w in [(3, 4, 5), (16, 8, 8), (7, 1, 9)]:
        cases.append(Case(f"features (1, {c}, {h}, {w}), normalized", (_features(rng, 1, c, h, w),)))
    cases.append(Case("a batch of 2 images (2, 5, 6, 6)", (_features(rng, 2, 5, 6, 6, relu=False),)))
    cases.append(Case("unbatched features (4, 3, 3)", (_features(rng, 1, 4, 3, 3)[0],)))
    cases.append(Case("normalize=False (no division by H*W)", (_features(rng, 1, 6, 5, 4),), {"normalize": False}))
    return cases


def _style_loss_cases(rng):
    cases = []
    for layers in (["a"], ["a", "b"], ["a", "b", "c"]):
        shapes = {l: (int(rng.integers(2, 9)), int(rng.integers(2, 7)), int(rng.integers(2, 7))) for l in layers}
        feats = {l: _features(rng, 1, *s) for l, s in shapes.items()}
        grams = {l: gram_matrix(_features(rng, 1, *s)) for l, s in shapes.items()}
        cases.append(Case(f"{len(layers)} layer(s), equal weights", (feats, grams)))
    feats = {"a": _features(rng, 1, 4, 5, 5), "b": _features(rng, 1, 8, 3, 3)}
    grams = {"a": gram_matrix(_features(rng, 1, 4, 6, 6)), "b": gram_matrix(_features(rng, 1, 8, 2, 2))}
    cases.append(Case("2 layers with weights {'a': 0.2, 'b': 3.0}", (feats, grams), {"weights": {"a": 0.2, "b": 3.0}}))
    f = _features(rng, 1, 5, 4, 4)
    cases.append(Case("features whose Gram equals the target (loss 0)", ({"a": f}, {"a": gram_matrix(f)})))
    return cases


def _tv_cases(rng):
    cases = []
    for shape in [(1, 3, 5, 5), (1, 3, 8, 6), (2, 1, 4, 7)]:
        cases.append(Case(f"random image {shape}", (torch.from_numpy(rng.uniform(0, 1, shape)).float(),)))
    cases.append(Case("a constant image (TV 0)", (torch.full((1, 3, 6, 6), 0.3),)))
    ramp = torch.linspace(0, 1, 5).view(1, 1, 1, 5).expand(1, 3, 5, 5).contiguous()
    cases.append(Case("a horizontal ramp", (ramp,)))
    return cases


register("08.gram_matrix", gram_matrix, _gram_cases)
register("08.style_loss", lambda *a, **k: float(style_loss(*a, **k)), _style_loss_cases, source=style_loss)
register("08.total_variation", lambda x: float(tv_penalty(x)), _tv_cases, source=tv_penalty)
