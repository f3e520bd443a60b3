"""Exercises of 08_texture_neural_style: the Gram matrix, the style loss over layers, Huang & Belongie's
style loss of channel means and standard deviations (the optimization loop is written once, in 05; total
variation once, in 06)."""
import torch

from ...style import gram_matrix, style_loss
from ..registry import Case, register


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


register("08.gram_matrix", gram_matrix, _gram_cases)
register("08.style_loss", lambda *a, **k: float(style_loss(*a, **k)), _style_loss_cases, source=style_loss)


# ---------------------------------------------------------------- Exercise 3: mean and standard deviation

def mean_std_loss(features, style_features):
    """Huang & Belongie's (2017, eq. 8) style loss: the sum over layers of ||mu(F) - mu(S)||_2 +
    ||sigma(F) - sigma(S)||_2, with each channel's mean and (biased) standard deviation over the positions.
    `features` and `style_features` map layer names to (1, C, H, W); returns a float."""
    total = 0.0
    for layer, style in style_features.items():
        f, s = features[layer].flatten(2), style.flatten(2)
        total += float((f.mean(-1) - s.mean(-1)).norm() + (f.std(-1, unbiased=False) - s.std(-1, unbiased=False)).norm())
    return total


def _mean_std_cases(rng):
    cases = []
    for layers in (["a"], ["a", "b"], ["a", "b", "c"]):
        shapes = {l: (int(rng.integers(2, 9)), int(rng.integers(2, 7)), int(rng.integers(2, 7))) for l in layers}
        feats = {l: _features(rng, 1, *s) for l, s in shapes.items()}
        style = {l: _features(rng, 1, c, h + 1, w + 2) for l, (c, h, w) in shapes.items()}
        cases.append(Case(f"{len(layers)} layer(s); the style image is larger than the image", (feats, style)))
    f = _features(rng, 1, 5, 4, 4)
    shuffled = f.flatten(2)[..., torch.from_numpy(rng.permutation(16))].view_as(f)
    cases.append(Case("the style is the image with its positions shuffled: the loss is 0", ({"a": f}, {"a": shuffled})))
    g = _features(rng, 1, 4, 5, 5, relu=False)
    cases.append(Case("the same features, scaled by 2 and shifted by 1", ({"a": g}, {"a": 2 * g + 1})))
    return cases


register("08.mean_std_loss", mean_std_loss, _mean_std_cases)
