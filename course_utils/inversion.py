"""Feature inversion: which image has the same code at a layer as a given photo?

Mahendran & Vedaldi (2015) reconstruct an image from its representation phi0 = phi(x0) at a layer
by starting from noise and minimizing

    ||phi(x) - phi0||^2 / ||phi0||^2  +  lambda_alpha * R_alpha(x)  +  lambda_TV * TV_beta(x)

R_alpha(x) = mean |x - 1/2|^alpha keeps the pixels in range (a large alpha punishes extreme values),
TV_beta(x) = mean ((x[i,j+1] - x[i,j])^2 + (x[i+1,j] - x[i,j])^2)^(beta/2) prefers piecewise smooth
images. Whatever the reconstructions of a layer share with the photo is what that layer keeps;
what they get wrong (colour, exact position, fine texture) the layer has thrown away.

One call to `course_utils.optimize.optimize_image` (it maximizes, so the objective is the negated loss).

Papers: Mahendran & Vedaldi 2015, "Understanding Deep Image Representations by Inverting Them";
Dosovitskiy & Brox 2016, "Inverting Visual Representations with Convolutional Networks".
"""
from __future__ import annotations

import torch

from .images import as_batch
from .layers import activations, get_layer
from .optimize import objectives as O
from .optimize import param as P
from .optimize.loop import Progress, evaluate, optimize_image
from .seeding import generator

# Defaults: weights of the regularizers, step size and steps of the pixel Adam optimizer.
# TV is the total-variation weight for codes on a grid 16 times coarser than the image (or coarser);
# finer codes pin the pixels down more and get less: TV * stride / 16 (see `tv_weight`).
TV, ALPHA, ALPHA_WEIGHT, BETA = 30.0, 6.0, 10.0, 2.0
STEPS, LR = 100, 0.02


def tv_weight(model, layer, size=128):
    """The default total-variation weight for inverting `layer`: TV * min(1, stride / 16), where the
    stride is how many image pixels one position of the code spans (2 for `stem.act`, 32 for the last block).

    Early codes sit on a fine grid and determine the pixels nearly alone; a strong smoothness prior would
    only blur them. Deep codes leave much of the image free, and the prior has to fill it. (Mahendran &
    Vedaldi also weight the regularizers differently for different layers.)
    """
    return _tv_for(activations(model, torch.full((1, 3, size, size), 0.5), layer), size)


def _tv_for(code, size):
    stride = size / code.shape[-1] if code.dim() == 4 else size
    return TV * min(1.0, stride / 16)


def inversion_objective(layer, target, tv=TV, alpha=ALPHA, alpha_weight=ALPHA_WEIGHT, beta=BETA):
    """The objective that optimize_image maximizes: minus the inversion loss and the regularizers."""
    loss = O.feature_distance(layer, target)
    if alpha_weight:
        loss = loss + alpha_weight * O.alpha_norm(alpha)
    if tv:
        loss = loss + tv * O.total_variation(beta)
    return -loss


def invert(model, image, layer, size=128, steps=STEPS, lr=LR, tv="auto", alpha=ALPHA, alpha_weight=ALPHA_WEIGHT,
           beta=BETA, seed=0, progress=True):
    """Reconstruct `image` from its code at `layer`, starting from noise; a (1, 3, H, W) tensor in [0, 1].

    image: anything `as_batch` takes (a file or a name is resized and centre-cropped to `size`).
    tv, alpha_weight: weights of total variation and of the alpha-norm (0 switches one off; tv="auto":
    `tv_weight(model, layer)`, less smoothing for early layers); alpha, beta: their exponents.
    """
    x0 = as_batch(image, None if torch.is_tensor(image) else size, channels=3)
    target = activations(model, x0, layer)
    if isinstance(tv, str):
        if tv != "auto":
            raise ValueError(f"tv must be a number or 'auto', got {tv!r}")
        tv = _tv_for(target, x0.shape[-1])
    g = generator(seed)  # one stream: the start image, then the optimizer's
    return optimize_image(model, inversion_objective(layer, target, tv, alpha, alpha_weight, beta),
                          P.noise(tuple(x0.shape[-2:]), g), steps, lr, seed=g,
                          progress=Progress.of(progress, f"inverting {layer}"))


def inversion_loss(model, x, layer, target):
    """||phi(x) - phi0||^2 / ||phi0||^2 at `layer`, for an image x and target activations phi0."""
    get_layer(model, layer)
    return evaluate(model, O.feature_distance(layer, target), x)


def reconstruction_error(model, x, x0, layer):
    """The inversion loss of a reconstruction x of the image x0: how far its code at `layer` is from x0's."""
    return inversion_loss(model, x, layer, activations(model, x0, layer))


__all__ = ["invert", "tv_weight", "inversion_objective", "inversion_loss", "reconstruction_error",
           "TV", "ALPHA", "ALPHA_WEIGHT", "BETA", "STEPS", "LR"]
