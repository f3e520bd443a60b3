"""Maximally activating patches: the image patches where a channel responds most, cut at its field.

For one channel, the k images of a pool in which it responds most, each cut at the receptive field of
its strongest unit (Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, ECCV 2014;
Girshick et al., *Rich feature hierarchies for accurate object detection*, CVPR 2014). The pool is crops
of the bundled photos at several scales (`photo_crops`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .layers import activations
from .receptive_fields import inside_positions, receptive_field


def photo_crops(names=None, size=128, scales=(1.0, 0.5, 0.25), flip=False):
    """A pool of square crops of the bundled photos at several scales: (crops (N, 3, size, size), sources).

    Each photo is resized so that a crop covers `scale` of its shorter side, then cut into a
    grid of non-overlapping crops (scale 1.0: one centre crop). sources[n] is the photo's name.
    flip=True adds every crop's mirror image.
    """
    from .images import PHOTOS, as_batch, load_image

    names = list(PHOTOS) if names is None else list(names)
    crops, sources = [], []
    for name in names:
        img = load_image(name)
        w, h = img.size
        for scale in scales:
            side = max(size, round(size / scale))  # the resized shorter side
            x = as_batch(img.resize((max(side, round(w * side / h)), max(side, round(h * side / w)))))[0]
            _, hh, ww = x.shape
            ny, nx = hh // size, ww // size
            oy, ox = (hh - ny * size) // 2, (ww - nx * size) // 2
            for r in range(ny):
                for c in range(nx):
                    crop = x[:, oy + r * size:oy + (r + 1) * size, ox + c * size:ox + (c + 1) * size]
                    crops.append(crop)
                    sources.append(name)
                    if flip:
                        crops.append(crop.flip(-1))
                        sources.append(name)
    return torch.stack(crops), sources


@dataclass
class Patch:
    """One maximally activating patch: which image, which unit position, how strongly, what pixels."""

    image_index: int
    position: tuple
    value: float
    box: tuple
    pixels: torch.Tensor


def channel_maxima(acts, channel, allowed=None):
    """(values (N,), positions (N, 2)): the largest response of `channel` in each image and where.

    allowed: an optional (h, w) bool mask of the positions that may be chosen.
    """
    a = acts[:, channel].float()
    if allowed is not None:
        a = a.masked_fill(~allowed, -math.inf)
    values, idx = a.flatten(1).max(1)
    w = a.shape[-1]
    return values, torch.stack([idx // w, idx % w], 1)


def _allowed(rf, acts, images, inside):
    """The positions that may compete: units whose field lies inside the image (when any does), or all."""
    if not inside:
        return None
    allowed = inside_positions(rf, acts.shape[-2:], images.shape[-2:])
    return allowed if allowed.any() else None


def top_patches(model, images, layer, channel, k=9, acts=None, inside=True, clip=False):
    """The k images in which `channel` of `layer` responds most, each cut at that unit's receptive field.

    One patch per image (its strongest position), as in Zeiler & Fergus's figures.
    images: a batch (N, 3, H, W) (`photo_crops` makes one).
    acts:   the layer's activations for `images` if already computed (saves the forward passes).
    inside: only consider units whose field lies entirely inside the image (units at the border
            partly see zero padding, and border effects would dominate); when the field is larger
            than the image, every unit is considered.
    clip:   cut the field clipped to the image (True) or the whole field, grey outside the image (False).
    Returns a list of Patch, strongest first.
    """
    if acts is None:
        acts = activations(model, images, layer)
    if not 0 <= channel < acts.shape[1]:
        raise ValueError(f"{layer} has {acts.shape[1]} channels; channel {channel} does not exist")
    k = min(k, len(images))
    rf = receptive_field(model, layer, tuple(images.shape[-2:]))
    values, positions = channel_maxima(acts, channel, _allowed(rf, acts, images, inside))
    order = torch.argsort(values, descending=True, stable=True)[:k]
    out = []
    for n in order.tolist():
        i, j = positions[n].tolist()
        box = rf.box(i, j)
        if clip:
            h, w = images.shape[-2:]
            box = (max(box[0], 0), max(box[1], 0), min(box[2], h), min(box[3], w))
        out.append(Patch(n, (i, j), float(values[n]), box, cut_patch(images[n], box)))
    return out


def selective_channels(model, images, layer, n=6, acts=None, inside=True, k=9):
    """The n channels of `layer` whose top-k responses (one per image) stand out most from their typical
    response: (mean of the k largest per-image maxima - median maximum) / std of the maxima.
    images, acts and inside as in `top_patches`."""
    if acts is None:
        acts = activations(model, images, layer)
    allowed = _allowed(receptive_field(model, layer, tuple(images.shape[-2:])), acts, images, inside)
    a = acts.float() if allowed is None else acts.float().masked_fill(~allowed, -math.inf)
    vals = a.flatten(2).max(2).values  # (N, C)
    score = (vals.topk(min(k, len(vals)), 0).values.mean(0) - vals.median(0).values) / vals.std(0).clamp_min(1e-6)
    return score.argsort(descending=True)[:n].tolist()


def show_top_patches(model, images, layer, channels, k=9, acts=None, sources=None, size=1.05, clip=True):
    """One row per channel: its k top patches (`top_patches`, clipped to the image). sources: a name per
    image, written above each patch with its activation. Returns the Figure."""
    from .plots import show_rows

    rows = [top_patches(model, images, layer, c, k, acts=acts, clip=clip) for c in channels]
    col_titles = None if sources is None else [[f"{sources[p.image_index]}\n{p.value:.2f}" for p in row] for row in rows]
    return show_rows([[p.pixels for p in row] for row in rows], [f"{layer}\nchannel {c}" for c in channels],
                     col_titles, size=size)


def cut_patch(image, box, fill=0.5):
    """The part of `image` (3, H, W) inside box (top, left, bottom, right); outside the image is `fill`."""
    top, left, bottom, right = box
    _, h, w = image.shape
    patch = torch.full((image.shape[0], bottom - top, right - left), float(fill), dtype=image.dtype)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if b > t and r > lft:
        patch[:, t - top:b - top, lft - left:r - left] = image[:, t:b, lft:r]
    return patch
