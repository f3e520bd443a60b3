"""Objectives for `optimize_image`: functions of the network's response that the optimizer MAXIMIZES.

They compose like numbers, the way Lucent's do:

    class_logit("ostrich") - 0.01 * l2()                         # Simonyan et al. 2014
    -(feature_distance("blocks.8", x0) + 1e-3 * total_variation())  # Mahendran & Vedaldi 2015

Penalties (`l2`, `total_variation`, `alpha_norm`, `feature_distance`) are positive numbers to be made
small, so they are subtracted. Each objective knows the layers it needs; the optimizer records them.

An objective is called with a `Context`: `ctx.image` is the image being optimized (in [0, 1]),
`ctx.acts[name]` the activations of the named layers and `ctx.logits` the output, both computed
on the transformed image (after jitter, scaling, ...). The image may be a batch: `on_image(obj, k)`
asks for something of image k alone, `interpolate` blends two objectives along a batch, and
`diversity` pushes the images of a batch apart (Olah, Mordvintsev & Schubert, "Feature Visualization",
Distill 2017, whose library Lucid has the same objectives).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..labels import class_index


@dataclass
class Context:
    image: torch.Tensor
    acts: dict
    logits: torch.Tensor


class Objective:
    """A scalar function of a Context, with the set of layers it reads. Supports + - * / and negation."""

    def __init__(self, fn, layers=(), name="objective"):
        self.fn, self.layers, self.name = fn, frozenset(layers), name

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.fn(ctx)

    def __repr__(self):
        return f"Objective({self.name})"

    @staticmethod
    def _lift(other):
        if isinstance(other, Objective):
            return other
        if isinstance(other, (int, float)):
            return Objective(lambda ctx: torch.tensor(float(other)), name=repr(other))
        return NotImplemented

    def __add__(self, other):
        other = self._lift(other)
        if other is NotImplemented:
            return other
        return Objective(lambda ctx: self(ctx) + other(ctx), self.layers | other.layers,
                         f"{self.name} + {other.name}")

    __radd__ = __add__

    def __neg__(self):
        return Objective(lambda ctx: -self(ctx), self.layers, f"-({self.name})")

    def __sub__(self, other):
        other = self._lift(other)
        return other if other is NotImplemented else self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, k):
        if not isinstance(k, (int, float)):
            return NotImplemented
        return Objective(lambda ctx: k * self(ctx), self.layers, f"{k:g} * {self.name}")

    __rmul__ = __mul__

    def __truediv__(self, k):
        return self * (1.0 / k)


def on_image(objective, k):
    """`objective` computed on image k of the batch alone (its image, activations and logits)."""
    def fn(ctx):
        return objective(Context(ctx.image[k:k + 1], {n: a[k:k + 1] for n, a in ctx.acts.items()},
                                 None if ctx.logits is None else ctx.logits[k:k + 1]))

    return Objective(fn, objective.layers, f"{objective.name}[image {k}]")


def interpolate(a, b, n):
    """For a batch of n images: image k maximizes (1 - t_k) a + t_k b with t_k = k / (n - 1), so the
    batch goes from what a wants to see to what b wants to see (Olah et al. 2017, "interpolation")."""
    if n < 2:
        raise ValueError(f"an interpolation needs a batch of at least 2 images, got {n}")
    return sum((on_image((1 - k / (n - 1)) * a + (k / (n - 1)) * b, k) for k in range(n)), 0.0)


# ---------------------------------------------------------------- of the network's response

def class_logit(target):
    """S_c: the (pre-softmax) score of class `target` (index or name). Simonyan et al. 2014 use the
    score, not the probability, which could also rise by lowering the other classes."""
    c = class_index(target)
    return Objective(lambda ctx: ctx.logits[:, c].mean(), name=f"logit[{c}]")


def channel(layer, n):
    """Mean activation of channel n of a layer (a 'feature visualization' of that channel)."""
    return Objective(lambda ctx: ctx.acts[layer][:, n].mean(), {layer}, f"{layer}:{n}")


def direction(layer, vector):
    """The mean over positions of <a_ij, v>: how much the layer's activation vectors point along v, a
    direction in the space of its C channels (a channel is the direction of a unit vector)."""
    v = torch.as_tensor(vector, dtype=torch.float32).flatten()

    def fn(ctx):
        a = ctx.acts[layer]
        if a.shape[1] != len(v):
            raise ValueError(f"{layer} has {a.shape[1]} channels but the direction has {len(v)} numbers")
        return (a * v.to(a).view(1, -1, *([1] * (a.dim() - 2)))).sum(1).mean()

    return Objective(fn, {layer}, f"{layer}:direction")


def neuron(layer, n, y=None, x=None):
    """Activation of one unit: channel n at spatial position (y, x), the centre by default."""

    def fn(ctx):
        a = ctx.acts[layer][:, n]
        yy = a.shape[-2] // 2 if y is None else y
        xx = a.shape[-1] // 2 if x is None else x
        return a[:, yy, xx].mean()

    return Objective(fn, {layer}, f"{layer}:{n}@{y},{x}")


def layer_l2(layer):
    """DeepDream: 1/2 * mean(a^2) over a layer. Its gradient w.r.t. the activation a is a / N,
    so ascending it 'sets the gradient equal to the activation' (Mordvintsev et al. 2015)."""
    return Objective(lambda ctx: 0.5 * ctx.acts[layer].pow(2).mean(), {layer}, f"l2({layer})")


def feature_distance(layer, target):
    """||phi(x) - phi0||^2 / ||phi0||^2 at a layer: the inversion loss of Mahendran & Vedaldi 2015.

    target: the activations phi0 (a tensor) of the image to reconstruct.
    """
    target = target.detach()
    return Objective(lambda ctx: relative_error(ctx.acts[layer], target), {layer}, f"dist({layer})")


def relative_error(x, target):
    """||x - target||^2 / ||target||^2: a scale-free distance (0: equal; 1: as far as zero is)."""
    return (x - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)


def gram_similarity(activations):
    """How alike the images of a batch are, by their Gram matrices: with G_i the Gram matrix of image i's
    activations (C, H, W) scaled to unit Frobenius norm, sum over pairs i != j of <G_i, G_j>, divided by N.
    0 for images with nothing in common; N - 1 for N copies of one image."""
    n = activations.shape[0]
    f = activations.flatten(2)  # (N, C, HW)
    g = f @ f.transpose(1, 2)
    g = g / g.flatten(1).norm(dim=1).clamp_min(1e-10).view(n, 1, 1)
    flat = g.flatten(1)
    pairs = flat @ flat.T
    return (pairs.sum() - pairs.diagonal().sum()) / n


def diversity(layer):
    """Olah et al.'s diversity term, as a penalty: the `gram_similarity` of the batch's activations at
    `layer`. Subtract it, `channel(l, n) - 100 * diversity(l)`, and the images of a batch show a unit's
    different faces."""
    return Objective(lambda ctx: gram_similarity(ctx.acts[layer]), {layer}, f"diversity({layer})")


# ---------------------------------------------------------------- penalties on the image itself

def l2():
    """R(I) = mean (I - 1/2)^2: the 'simple regularizer' of Simonyan et al., measured from mid-grey
    because our images live in [0, 1] (theirs were mean-subtracted)."""
    return Objective(lambda ctx: (ctx.image - 0.5).pow(2).mean(), name="l2")


def alpha_norm(alpha=6.0):
    """R(I) = mean |I - 1/2|^alpha (Mahendran & Vedaldi 2015): a large alpha punishes extreme pixels."""
    return Objective(lambda ctx: (ctx.image - 0.5).abs().pow(alpha).mean(), name=f"alpha{alpha:g}")


def total_variation(beta=2.0):
    """TV(I) = mean over pixels of ((I[i,j+1]-I[i,j])^2 + (I[i+1,j]-I[i,j])^2)^(beta/2)
    (Mahendran & Vedaldi 2015): small when neighbouring pixels agree, so it removes speckle."""
    return Objective(lambda ctx: tv_penalty(ctx.image, beta), name="tv")


def tv_penalty(x, beta=2.0):
    """The total variation of a (N, C, H, W) tensor, as defined in `total_variation`."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    d2 = dx.pow(2) + dy.pow(2)
    return (d2 + 1e-12).pow(beta / 2).mean() if beta != 2 else d2.mean()
