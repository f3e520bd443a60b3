"""Exercises of 08_texture_neural_style: the Gram matrix, the style loss over layers, the whole texture
synthesis loop (judged by the style loss it reaches). Total variation is asked once, in 06."""
import math

import torch

from ...images import noise_image
from ...layers import activations, capture
from ...style import gram_matrix, style_loss
from ...testing import tiny_cnn
from ..registry import Case, reaches, register


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


# ---------------------------------------------------------------- Exercise 3: the whole loop

def synthesize_texture(model, target_grams, size=32, steps=60, lr=0.05, seed=0):
    """Texture synthesis (Gatys et al. 2015) from faint noise (`images.noise_image(size, seed)`): Adam on the
    pixels to lower the style loss of the image's features at the layers of `target_grams` ({layer: (1, C, C)}),
    with equal weights, the image clamped to [0, 1] after each step. Returns the image (1, 3, size, size)."""
    x = noise_image(size, seed).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        with capture(model, list(target_grams), detach=False) as feats:
            model(x)
        loss = style_loss(feats, target_grams)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach()


def _texture_objective(case, image):
    """-log(style loss): the loss falls by orders of magnitude, so progress is judged in factors."""
    model, grams = case.args
    return -math.log(max(float(style_loss(activations(model, image, list(grams)), grams)), 1e-30))


def _texture_start(case):
    return noise_image(case.kwargs["size"], case.kwargs["seed"])


def _texture_cases(rng):
    cases = []
    for layers, size, steps in [(["relu1"], 24, 40), (["relu1", "relu2"], 32, 60), (["conv1", "relu2"], 28, 50)]:
        net = tiny_cnn(int(rng.integers(1 << 30)), scale=0.3)
        stripes = torch.from_numpy(rng.uniform(0, 1, (1, 3, 1, 1))).float() * (torch.arange(size) % 4 < 2).float()
        texture = (0.2 + 0.6 * stripes.expand(1, 3, size, size)).contiguous()
        feats = activations(net, texture, layers)
        grams = {layer: gram_matrix(feats[layer]) for layer in layers}
        cases.append(Case(f"the Grams of a striped {size}x{size} texture at {layers} of a small CNN, {steps} steps",
                          (net, grams), dict(size=size, steps=steps, lr=0.05, seed=int(rng.integers(100)))))
    return cases


register("08.texture_synthesis", synthesize_texture, _texture_cases,
         behaviour=reaches(_texture_objective, _texture_start, share=0.6))
