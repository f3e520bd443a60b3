"""Gradient ascent on the image: what a class or a channel of the network "wants to see".

Start from noise and climb the class score (Simonyan et al. 2014), with a penalty on the image:

    I* = argmax_I  S_c(I) - lambda * R(I),      R(I) = mean (I - 1/2)^2   (the L2 "simple regularizer")

Alone, the L2 penalty gives colourful high-frequency noise that the network scores very highly:
the network's response is driven by patterns no photo contains. Yosinski et al. 2015 add image
operations between the steps, and each removes one kind of unnatural signal:

- every few steps, blur the image a little (removes the high frequencies the score likes);
- set to grey the pixels of small norm (keeps only the pixels that matter);
- set to grey the pixels whose contribution to the score is small (|pixel * gradient|);
- jitter (and slightly scale and rotate) the image before each step, so that a pattern has to
  work at many positions (Mordvintsev et al. 2015, "transformation robustness").

All of it is one call to `course_utils.optimize.optimize_image`; this module builds the objective, turns
the regularizer settings into the optimizer's transforms and image operations (`regularization`) and
picks the defaults. `REGULARIZERS` holds the settings, `LADDER` adds them one at a time. `param=` chooses
what the steps move: `param.noise` (pixels from faint noise) or `param.fourier` (Olah et al. 2017).

Papers: Erhan et al. 2009, "Visualizing Higher-Layer Features of a Deep Network";
Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks"; Yosinski et al. 2015,
"Understanding Neural Networks Through Deep Visualization"; Olah et al. 2017, "Feature Visualization".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .labels import class_index
from .layers import activations, get_layer
from .optimize import objectives as O
from .optimize import param as P
from .optimize import transforms as T
from .optimize.loop import Progress, optimize_image
from .seeding import generator

# What each regularizer is set to when it is on; `L2_ONLY` switches all but the L2 penalty off.
REGULARIZERS = dict(l2=30.0, blur_every=4, blur_sigma=1.0, clip_pixels=10.0, clip_contributions=25.0,
                    jitter=16, scale=0.1, rotate=10.0)
L2_ONLY = dict(blur_every=0, clip_pixels=0.0, clip_contributions=0.0, jitter=0, scale=0.0, rotate=0.0)
NONE = dict(L2_ONLY, l2=0.0)  # no regularizer at all
# The defaults for units (channels, neurons, directions): no L2 penalty, no clipping.
UNIT = dict(l2=0.0, clip_pixels=0.0, clip_contributions=0.0)

# The regularizers added one at a time (each row keeps the ones above it).
_ADDED = [("L2 only", {}),
          ("+ blur", dict(blur_every=REGULARIZERS["blur_every"], blur_sigma=REGULARIZERS["blur_sigma"])),
          ("+ clip small pixels", dict(clip_pixels=REGULARIZERS["clip_pixels"])),
          ("+ clip small contributions", dict(clip_contributions=REGULARIZERS["clip_contributions"])),
          ("+ jitter", dict(jitter=REGULARIZERS["jitter"], scale=REGULARIZERS["scale"],
                            rotate=REGULARIZERS["rotate"]))]


def _ladder():
    rows, current = [], dict(L2_ONLY)
    for name, added in _ADDED:
        current = {**current, **added}
        rows.append((name, dict(current)))
    return rows


LADDER = _ladder()

STEPS, LR = 100, 0.05  # pixel Adam steps and step size of the defaults


def robustness_transforms(jitter=16, scale=0.1, rotate=10.0):
    """The random transforms applied before each step: shift by up to `jitter` px, scale by up to
    1 +- `scale`, rotate by up to `rotate` degrees (zero switches one off)."""
    ts = []
    if jitter:
        ts.append(T.jitter(int(jitter)))
    if scale:
        ts.append(T.random_scale((1 - scale, 1 - scale / 2, 1.0, 1 + scale / 2, 1 + scale)))
    if rotate:
        ts.append(T.random_rotate(rotate))
    return ts


def regularization(l2=REGULARIZERS["l2"], blur_every=REGULARIZERS["blur_every"], blur_sigma=REGULARIZERS["blur_sigma"],
                   clip_pixels=REGULARIZERS["clip_pixels"], clip_contributions=REGULARIZERS["clip_contributions"],
                   jitter=REGULARIZERS["jitter"], scale=REGULARIZERS["scale"], rotate=REGULARIZERS["rotate"]):
    """The regularizer settings as what the optimizer takes: (L2 weight, transforms, image operations)."""
    post = []
    if clip_pixels > 0:
        post.append(T.clip_pixels(clip_pixels))
    if clip_contributions > 0:
        post.append(T.clip_contributions(clip_contributions))
    if blur_every and blur_sigma > 0:
        post.append(T.blur_every(blur_every, blur_sigma))
    return l2, robustness_transforms(jitter, scale, rotate), post


def visualize(model, objective, size=128, steps=STEPS, lr=LR, seed=0, param=P.noise, batch=1, optimizer="adam",
              progress=True, **regularizers):
    """Images that maximize `objective`, from noise: a (batch, 3, size, size) tensor in [0, 1].

    objective: anything of `objectives`: a class logit, a channel, a neuron, a direction, their sums, an
    `interpolate` along the batch, minus a `diversity` penalty. param: `param.noise` (pixels, from faint
    noise) or `param.fourier`, called as param(size, seed, batch=batch); optimizer: as in `optimize_image`.
    Regularizers: see REGULARIZERS
    (all on by default; `**UNIT` for the settings of units, `**L2_ONLY` for the L2 penalty alone); with a
    Fourier parameterization blur and clipping are off (the parameterization regularizes instead).
    """
    l2, transforms, post = regularization(**regularizers)
    g = generator(seed)  # one stream: the start image, then the random transforms
    start = param(size, g, batch=batch)
    if not isinstance(start, P.PixelImage):
        post = []
    return optimize_image(model, objective - l2 * O.l2() if l2 else objective, start, steps, lr, optimizer,
                          transforms, post, seed=g, progress=Progress.of(progress, objective.name))


def class_visualization(model, target, size=224, steps=STEPS, lr=LR, seed=0, param=P.noise, progress=True,
                        **regularizers):
    """An image the model scores highly as class `target` (an index or an ImageNet name): `visualize` of
    the class logit, a (1, 3, size, size) tensor in [0, 1]. Regularizers: all on by default, see REGULARIZERS;
    pass `**L2_ONLY` for the L2 penalty alone."""
    return visualize(model, O.class_logit(class_index(target)), size, steps, lr, seed, param, progress=progress,
                     **regularizers)


def channel_visualization(model, layer, channel, size=128, steps=STEPS, lr=LR, seed=0, param=P.noise, progress=True,
                          **regularizers):
    """An image that excites channel `channel` of `layer` (its mean activation), from noise: `visualize`
    with the defaults of UNIT (no L2 penalty: a channel's mean is on another scale than a class score; no
    clipping: every position adds to a channel's mean, so clipping would only grey out the borders)."""
    return visualize(model, unit(model, layer, channel), size, steps, lr, seed, param, progress=progress,
                     **{**UNIT, **regularizers})


def unit(model, layer, channel, kind="channel"):
    """The objective of a unit of `layer`: its channel's mean ("channel") or the channel's centre neuron
    ("neuron"), after checking that the layer and the channel exist (a clear error that lists them)."""
    get_layer(model, layer)  # a wrong name: the error lists the valid ones
    n_channels = activations(model, torch.full((1, 3, 64, 64), 0.5), layer).shape[1]
    if not 0 <= channel < n_channels:
        raise ValueError(f"layer {layer!r} has {n_channels} channels: choose channel in 0..{n_channels - 1}")
    if kind not in ("channel", "neuron"):
        raise ValueError(f"kind must be 'channel' or 'neuron', got {kind!r}")
    return O.channel(layer, channel) if kind == "channel" else O.neuron(layer, channel)


def ascent_step(model, x, target, lr=0.1, l2_weight=1.0):
    """One step of gradient ascent on S_c(x) - l2_weight * mean (x - 1/2)^2, then clamp to [0, 1]:

        x <- clamp(x + lr * d/dx [S_c(x) - l2_weight * mean (x - 1/2)^2], 0, 1)

    (x is a (1, 3, H, W) tensor; no transforms, no image operations; the optimizer with one SGD step.)
    """
    objective = O.class_logit(target) - l2_weight * O.l2()
    return optimize_image(model, objective, x, steps=1, lr=lr, optimizer="sgd", progress=False)


@torch.no_grad()
def recognized_by(model, images, target, size=None, crops=8, min_crop=0.8, seed=0):
    """How well `model` recognizes class `target` in each image after random crops: the mean
    probability of the class and the fraction of crops where it is the top-1 class.

    Each crop keeps a random square of min_crop..1 of the side, resized to `size` (default: the
    image's own size). A test that a visualization is more than a trick on one network at one
    exact position: another network, another resolution, other crops. Returns a list of
    (probability, top1_fraction), one per image of the (N, 3, H, W) batch or list.
    """
    c = class_index(target)
    g = generator(seed)
    out = []
    for x in (images if isinstance(images, (list, tuple)) else list(images)):
        x = x if x.dim() == 4 else x.unsqueeze(0)
        h, w = x.shape[-2:]
        probs, tops = [], []
        for _ in range(crops):
            s = int(min(h, w) * (min_crop + (1 - min_crop) * float(torch.rand(1, generator=g))))
            y0 = int(torch.randint(0, h - s + 1, (1,), generator=g))
            x0 = int(torch.randint(0, w - s + 1, (1,), generator=g))
            crop = F.interpolate(x[..., y0:y0 + s, x0:x0 + s], size=size or (h, w), mode="bilinear",
                                 align_corners=False)
            p = model(crop).softmax(-1)[0]
            probs.append(float(p[c]))
            tops.append(int(p.argmax()) == c)
        out.append((sum(probs) / crops, sum(tops) / crops))
    return out


__all__ = ["visualize", "class_visualization", "channel_visualization", "unit", "ascent_step", "recognized_by",
           "robustness_transforms", "regularization", "REGULARIZERS", "L2_ONLY", "NONE", "UNIT", "LADDER", "STEPS", "LR"]
