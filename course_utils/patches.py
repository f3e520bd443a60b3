"""Maximally activating patches: the image patches where a channel responds most, cut at its field.

For one channel, the k images of a pool in which it responds most, each cut at the receptive field of
its strongest unit (Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, ECCV 2014;
Girshick et al., *Rich feature hierarchies for accurate object detection*, CVPR 2014). The pool is crops
of the bundled photos (or the reader's own) at several scales (`photo_crops`), one patch per place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .images import as_batch, load_image
from .layers import activations
from .plots import show_rows
from .receptive_fields import inside_positions, receptive_field

IMAGE_FILES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Every bundled image that is a photograph (not a binary silhouette or a logo).
POOL_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle", "china", "flower", "grace_hopper", "camera",
               "coins", "retina", "immunohistochemistry", "hubble_deep_field", "brick", "grass", "gravel")


@dataclass(frozen=True)
class Region:
    """Where a crop came from: the photo's name, its box (top, left, bottom, right) in the photo's own
    pixels, and whether the crop is mirrored."""

    photo: str
    box: tuple
    flipped: bool = False

    def part(self, box, size):
        """The Region of `box` (top, left, bottom, right in the crop's pixels, a crop of `size` px)."""
        top, left, bottom, right = (min(max(v, 0), size) for v in box)
        if self.flipped:
            left, right = size - right, size - left
        t, lft, b, r = self.box
        fy, fx = (b - t) / size, (r - lft) / size
        return Region(self.photo, (t + top * fy, lft + left * fx, t + bottom * fy, lft + right * fx), self.flipped)

    def overlaps(self, other, share=0.5):
        """True when both lie in one photo and their intersection covers at least `share` of the smaller."""
        if self.photo != other.photo:
            return False
        (t1, l1, b1, r1), (t2, l2, b2, r2) = self.box, other.box
        inter = max(0.0, min(b1, b2) - max(t1, t2)) * max(0.0, min(r1, r2) - max(l1, l2))
        smaller = min((b1 - t1) * (r1 - l1), (b2 - t2) * (r2 - l2))
        return smaller > 0 and inter >= share * smaller


def _expand(names):
    """Bundled names, paths, and every image file of a folder (sorted)."""
    from pathlib import Path

    out = []
    for name in names:
        path = Path(str(name)).expanduser()
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_FILES)
            if not files:
                raise ValueError(f"the folder {str(path)!r} holds no image ({', '.join(IMAGE_FILES)})")
            out += [str(f) for f in files]
        else:
            out.append(name)
    return out


def photo_crops(names=None, size=128, scales=(1.0, 0.5, 0.25), flip=False):
    """A pool of square crops of photos at several scales: (crops (N, 3, size, size), sources, regions).

    names: bundled names, paths, or folders (each image file in it is added); None: every bundled photo
    (`POOL_PHOTOS`). Each photo is resized so that a crop covers `scale` of its shorter side, then cut into
    a grid of non-overlapping crops (scale 1.0: one centre crop). sources[n] is the photo's name,
    regions[n] the `Region` of the photo it shows (so `top_patches` can skip a second patch of one place).
    flip=True adds every crop's mirror image.
    """
    names = _expand(POOL_PHOTOS if names is None else list(names))
    crops, sources, regions = [], [], []
    for name in names:
        img = load_image(name)
        w, h = img.size
        for scale in scales:
            side = max(size, round(size / scale))  # the resized shorter side
            rw, rh = max(side, round(w * side / h)), max(side, round(h * side / w))
            x = as_batch(img.resize((rw, rh)))[0]
            ny, nx = rh // size, rw // size
            oy, ox = (rh - ny * size) // 2, (rw - nx * size) // 2
            for r in range(ny):
                for c in range(nx):
                    top, left = oy + r * size, ox + c * size
                    crop = x[:, top:top + size, left:left + size]
                    box = (top * h / rh, left * w / rw, (top + size) * h / rh, (left + size) * w / rw)
                    crops.append(crop)
                    sources.append(name)
                    regions.append(Region(name, box))
                    if flip:
                        crops.append(crop.flip(-1))
                        sources.append(name)
                        regions.append(Region(name, box, flipped=True))
    return torch.stack(crops), sources, regions


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


def top_patches(model, images, layer, channel, k=9, acts=None, inside=True, clip=False, regions=None):
    """The k images in which `channel` of `layer` responds most, each cut at that unit's receptive field.

    One patch per image (its strongest position), as in Zeiler & Fergus's figures.
    images: a batch (N, 3, H, W) (`photo_crops` makes one).
    acts:   the layer's activations for `images` if already computed (saves the forward passes).
    inside: only consider units whose field lies entirely inside the image (units at the border
            partly see zero padding, and border effects would dominate); when the field is larger
            than the image, every unit is considered.
    clip:   cut the field clipped to the image (True) or the whole field, grey outside the image (False).
    regions: the `Region` of each image (from `photo_crops`): a patch is skipped when it shows much of
            the same place of the same photo as a stronger one (a mirror image, another scale).
    Returns a list of Patch, strongest first.
    """
    if acts is None:
        acts = activations(model, images, layer)
    if not 0 <= channel < acts.shape[1]:
        raise ValueError(f"{layer} has {acts.shape[1]} channels; channel {channel} does not exist")
    if regions is not None and len(regions) != len(images):
        raise ValueError(f"regions has {len(regions)} entries for {len(images)} images")
    rf = receptive_field(model, layer, tuple(images.shape[-2:]))
    values, positions = channel_maxima(acts, channel, _allowed(rf, acts, images, inside))
    out, taken = [], []
    for n in torch.argsort(values, descending=True, stable=True).tolist():
        if len(out) == k:
            break
        i, j = positions[n].tolist()
        box = rf.box(i, j)
        if regions is not None:
            where = regions[n].part(box, images.shape[-1])
            if any(where.overlaps(t) for t in taken):
                continue
            taken.append(where)
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


def strongest_channels(model, images, layer, n=6, acts=None, k=9):
    """The n channels of `layer` whose k largest responses (one per image) are largest on average: the units
    the pool drives hardest (`selective_channels` asks instead which stand out from their usual response)."""
    if acts is None:
        acts = activations(model, images, layer)
    vals = acts.float().flatten(2).max(2).values  # (N, C)
    return vals.topk(min(k, len(vals)), 0).values.mean(0).argsort(descending=True)[:n].tolist()


def show_top_patches(model, images, layer, channels, k=9, acts=None, sources=None, size=1.05, clip=True,
                     regions=None):
    """One row per channel: its k top patches (`top_patches`, clipped to the image, one per place when
    `regions` is given). sources: a name per image, written above each patch with its activation.
    Returns the Figure."""
    rows = [top_patches(model, images, layer, c, k, acts=acts, clip=clip, regions=regions) for c in channels]
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
