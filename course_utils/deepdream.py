"""DeepDream: pick a layer and amplify whatever it already sees in a photo.

    x <- x + lr * g / mean|g|,   g = d/dx 1/2 mean_i a_i(x)^2        (a: the layer's activations)

The gradient of 1/2 ||a||^2 with respect to a is a itself: "set the gradient equal to the
activation" and backpropagate. Whatever a unit responds to a little, the step makes it respond to
more, so a cloud that looks slightly like a dog grows a dog. DeepDream adds three tricks, all of
them parts of the course's one image optimizer (`course_utils.optimize`): normalized gradient steps
(`optimizer="normalized"`), random jitter before every step, and octaves (`octave_pyramid`): dream on a
small copy first, then carry the added detail up to larger copies, so the patterns come at several scales.

"We must go deeper": dream, zoom into the centre a little, dream again; each frame starts from
what the last one hallucinated (`zoom_sequence`).

Papers and code: Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks",
Google Research blog, 2015; https://github.com/google/deepdream (the original notebook, including
guided dreaming).
"""
from __future__ import annotations

import io
import os

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .images import as_batch, noise_image, to_image
from .layers import activations, get_layer
from .optimize import objectives, transforms
from .optimize.loop import Progress, octave_pyramid, optimize_image
from .optimize.param import PixelImage
from .seeding import generator

# Layers of the default model (EfficientNet-Lite0) that dream well, chosen by looking at the results:
# blocks.4 (stride 8) paints strokes and ornaments, blocks.8 (stride 16) eyes and scales,
# blocks.10 and blocks.11.expand.act (stride 16, deeper) animal heads and fur.
DREAM_LAYERS = {"early": "blocks.4", "middle": "blocks.8", "late": "blocks.10"}
DEFAULT_LAYER = DREAM_LAYERS["late"]


def dream_objective(layer):
    """The DeepDream objective: 1/2 mean(a^2) over the layer (its gradient w.r.t. a is a / N)."""
    return objectives.layer_l2(layer)


def guided_objective(layer, guide_features):
    """Guided DeepDream: at every position i of the image's features a_i, find the guide's feature
    vector y_j that matches best (largest dot product) and maximize that dot product:

        objective = mean_i max_j <a_i, y_j>,     d objective / d a_i = y_{j*(i)} / N

    so the image is pushed towards the guide's features instead of its own.
    guide_features: (1, C, h, w) activations of the guide image at the same layer (`layers.activations`).
    """
    if not torch.is_tensor(guide_features) or guide_features.dim() != 4:
        raise ValueError("guide_features must be a (1, C, h, w) tensor: use activations(model, guide, layer)")
    y = guide_features.detach()[0].flatten(1)  # (C, M)

    def fn(ctx):
        a = ctx.acts[layer]
        if a.shape[1] != y.shape[0]:
            raise ValueError(f"the guide has {y.shape[0]} channels but {layer} has {a.shape[1]}: "
                             "compute the guide's features at the same layer")
        x = a[0].flatten(1)  # (C, N)
        return (x.T @ y).max(dim=1).values.mean()

    return objectives.Objective(fn, {layer}, f"guided({layer})")


def dream_step(model, x, layer, lr=0.02):
    """One DeepDream step without jitter: x + lr * g / mean|g| with g the gradient of
    `dream_objective(layer)`, clamped to [0, 1]. (The same step `deepdream` repeats, through the optimizer.)"""
    return optimize_image(model, dream_objective(layer), x, steps=1, lr=lr, optimizer="normalized", progress=False)


def deepdream(model, image, layer=DEFAULT_LAYER, octaves=3, octave_scale=1.4, steps=10, lr=0.02, jitter=16,
              size=None, guide=None, seed=0, progress=True):
    """Dream on `image` at `layer`; return a (1, 3, H, W) tensor in [0, 1] of the image's size.

    image:   anything `as_batch` takes; size=None keeps its size, size=224 crops a 224 x 224 square,
             size=(H, W) resizes.
    octaves, octave_scale: dream at `octaves` sizes, each `octave_scale` times the one before.
    steps, lr, jitter: normalized-gradient steps per octave, their size (mean pixel change per
             step, in [0, 1] units) and the random shift (pixels) before each step.
    guide:   an image whose features to amplify instead of the image's own (guided dreaming).
    progress: True, False, a callback(step, image, value) or an `optimize.Progress` (its history
             receives the objective's value at every step).
    """
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name such as {DEFAULT_LAYER!r}, got {type(layer).__name__}")
    get_layer(model, layer)
    if not lr > 0 or not jitter >= 0:
        raise ValueError("lr must be > 0 and jitter >= 0")
    x = as_batch(image, size, device=model, channels=3)
    objective = (dream_objective(layer) if guide is None else
                 guided_objective(layer, activations(model, as_batch(guide, 224), layer)))
    shift = [transforms.jitter(jitter)] if jitter else []
    g = generator(seed)
    progress = Progress.of(progress, f"dreaming at {layer}", total=steps * octaves)
    with progress.running():
        # converted once above: each octave's optimizer gets the tensor as its pixels
        return octave_pyramid(x, lambda start: optimize_image(model, objective, PixelImage(start), steps, lr,
                                                              "normalized", shift, seed=g, progress=progress),
                              octaves, octave_scale)


def zoom(x, factor=1.05):
    """Crop the centre 1/factor of the image and scale it back up to the same size (bilinear)."""
    if factor < 1:
        raise ValueError(f"zoom factor must be >= 1, got {factor}")
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def zoom_sequence(model, image="noise", frames=8, zoom_factor=1.05, size=160, layer=DEFAULT_LAYER, octaves=2,
                  steps=5, seed=0, progress=True, **dream_kwargs):
    """"We must go deeper": dream, zoom into the centre, dream again on the result, `frames` times.

    image: a photo (anything `as_batch` takes; cropped to a size x size square) or "noise".
    Returns the list of frames, each a (1, 3, size, size) tensor in [0, 1]; the first is the start.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    x = noise_image(size, seed) if isinstance(image, str) and image == "noise" else as_batch(image, size)
    out = [x]
    for k in tqdm(range(frames - 1), desc="dream, zoom, repeat", disable=not progress, leave=False):
        x = deepdream(model, x, layer=layer, octaves=octaves, steps=steps, seed=seed + k, progress=False,
                      **dream_kwargs)
        x = zoom(x, zoom_factor)
        out.append(x)
    return out


def gif_bytes(frames, duration=200, loop=0) -> bytes:
    """An animated GIF (bytes) of a list of image tensors or PIL images, `duration` ms per frame."""
    if not frames:
        raise ValueError("no frames to animate")
    images = [to_image(f) if torch.is_tensor(f) else f for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=loop)
    return buf.getvalue()


def save_gif(frames, path, duration=200, loop=0):
    """Write frames as an animated GIF to `path` (folders are created); return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gif_bytes(frames, duration, loop))
    return path


__all__ = ["deepdream", "dream_objective", "dream_step", "guided_objective", "zoom", "zoom_sequence",
           "gif_bytes", "save_gif", "DREAM_LAYERS", "DEFAULT_LAYER"]
