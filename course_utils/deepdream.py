"""DeepDream: pick a layer and amplify whatever it already sees in a photo.

    x <- x + lr * g / mean|g|,   g = d/dx 1/2 mean_i a_i(x)^2        (a: the layer's activations)

The gradient of 1/2 ||a||^2 with respect to a is a itself: "set the gradient equal to the
activation" and backpropagate. Whatever a unit responds to a little, the step makes it respond to
more, so a cloud that looks slightly like a dog grows a dog. DeepDream adds three tricks, all of
them options of the course's one image optimizer (`course_utils.optimize.optimize_image`):
normalized gradient steps, random jitter before every step, and octaves: dream on a small copy
first, then carry the added detail up to larger copies, so the patterns come at several scales.

"We must go deeper": dream, zoom into the centre a little, dream again; each frame starts from
what the last one hallucinated (`zoom_sequence`).

Papers and code: Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks",
Google Research blog, 2015; https://github.com/google/deepdream (the original notebook, including
guided dreaming).
"""
from __future__ import annotations

import io

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import objectives, transforms
from .images import load_image, to_image, to_tensor
from .layers import capture, get_layer
from .optimize import optimize_image

# Layers of the default model (EfficientNet-Lite0) that dream well, chosen by looking at the results:
# blocks.4 (stride 8) paints strokes and ornaments, blocks.8 (stride 16) eyes and scales,
# blocks.10 and blocks.11.expand.act (stride 16, deeper) animal heads and fur.
LAYERS = {"early": "blocks.4", "middle": "blocks.8", "late": "blocks.10"}
DEFAULT_LAYER = LAYERS["late"]


def dream_objective(layer):
    """The DeepDream objective: 1/2 mean(a^2) over the layer (its gradient w.r.t. a is a / N)."""
    return objectives.layer_l2(layer)


def layer_features(model, image, layer):
    """The activations (1, C, h, w) of `layer` for an image (anything `to_tensor` takes), no gradient."""
    get_layer(model, layer)  # a wrong name raises LayerNotFoundError with the valid ones
    x = to_tensor(image)
    with torch.no_grad(), capture(model, [layer]) as acts:
        model(x)
    return acts[layer]


def guided_objective(layer, guide_features):
    """Guided DeepDream: at every position i of the image's features a_i, find the guide's feature
    vector y_j that matches best (largest dot product) and maximize that dot product:

        objective = mean_i max_j <a_i, y_j>,     d objective / d a_i = y_{j*(i)} / N

    so the image is pushed towards the guide's features instead of its own.
    guide_features: (1, C, h, w) activations of the guide image at the same layer (`layer_features`).
    """
    if not torch.is_tensor(guide_features) or guide_features.dim() != 4:
        raise ValueError("guide_features must be a (1, C, h, w) tensor: use layer_features(model, guide, layer)")
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
    return optimize_image(model, dream_objective(layer), image=x, size=None, steps=1, lr=lr,
                          optimizer="normalized", progress=False)


def octave_sizes(hw, octaves=3, octave_scale=1.4):
    """The sizes (H, W) of the octaves, smallest first, the last one `hw` itself."""
    return [tuple(max(1, round(s / octave_scale ** (octaves - 1 - k))) for s in hw) for k in range(octaves)]


def octave_pyramid(x, dream_fn, octaves=3, octave_scale=1.4):
    """The octave pyramid written out (optimize_image does the same inside its loop, for any objective):
    for each size, smallest first, shrink the photo, add the detail dreamed so far (upscaled), dream,
    and keep what the dreaming added as the new detail.

    x: (1, 3, H, W) in [0, 1]; dream_fn: image -> dreamed image of the same size.
    """
    detail = torch.zeros_like(x)
    for hw in octave_sizes(x.shape[-2:], octaves, octave_scale):
        base = _resize(x, hw)
        dreamed = dream_fn((base + _resize(detail, hw)).clamp(0, 1))
        detail = dreamed - base
    return dreamed


def _resize(x, hw):
    return x if tuple(x.shape[-2:]) == tuple(hw) else F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


def deepdream(model, image, layer=DEFAULT_LAYER, octaves=3, octave_scale=1.4, steps=10, lr=0.02, jitter=16,
              size=None, guide=None, seed=0, progress=True, callback=None, callback_every=5, history=None):
    """Dream on `image` at `layer`; return a (1, 3, H, W) tensor in [0, 1] of the image's size.

    image:   anything `load_image` takes, or a (1, 3, H, W) tensor; size=None keeps its size,
             size=224 crops a 224 x 224 square, size=(H, W) resizes.
    octaves, octave_scale: dream at `octaves` sizes, each `octave_scale` times the one before.
    steps, lr, jitter: normalized-gradient steps per octave, their size (mean pixel change per
             step, in [0, 1] units) and the random shift (pixels) before each step.
    guide:   an image whose features to amplify instead of the image's own (guided dreaming).
    history: a list that receives the objective's value at every step.
    """
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name such as {DEFAULT_LAYER!r}, got {type(layer).__name__}")
    get_layer(model, layer)
    if octave_scale < 1:
        raise ValueError(f"octave_scale must be >= 1 (each octave is larger than the last), got {octave_scale}")
    if not lr > 0 or not jitter >= 0:
        raise ValueError("lr must be > 0 and jitter >= 0")
    x = image if torch.is_tensor(image) and size is None else to_tensor(load_image(image, size=size))
    if guide is None:
        objective = dream_objective(layer)
    else:
        objective = guided_objective(layer, layer_features(model, load_image(guide, size=224), layer))
    return optimize_image(model, objective, image=x, size=None, steps=steps, lr=lr, optimizer="normalized",
                          transforms=[transforms.jitter(jitter)] if jitter else [], octaves=octaves,
                          octave_scale=octave_scale, seed=seed, progress=progress, callback=callback,
                          callback_every=callback_every, history=history, description=f"dreaming at {layer}")


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

    image: a photo (anything `load_image` takes; cropped to a size x size square) or "noise".
    Returns the list of frames, each a (1, 3, size, size) tensor in [0, 1]; the first is the start.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if isinstance(image, str) and image == "noise":
        g = torch.Generator().manual_seed(seed)
        x = (0.5 + 0.1 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1)
    else:
        x = to_tensor(load_image(image, size=size))
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
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gif_bytes(frames, duration, loop))
    return path


__all__ = ["deepdream", "dream_objective", "dream_step", "octave_sizes", "octave_pyramid", "guided_objective", "layer_features", "zoom", "zoom_sequence",
           "gif_bytes", "save_gif", "LAYERS", "DEFAULT_LAYER"]
