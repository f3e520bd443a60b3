"""Saliency segments objects: seed GrabCut with a map's most and least salient pixels, and measure it.

Simonyan, Vedaldi & Zisserman (2014, Sec. 3.1) segmented the object a class score depends on without any
segmentation training: the pixels of highest saliency are foreground seeds, those of lowest saliency
background seeds, and GrabCut (Rother, Kolmogorov & Blake 2004: colour models and a graph cut,
OpenCV's `cv2.grabCut`) grows them into a mask. `composite` pastes bundled objects onto bundled textures at
random places, where the answer is known (the easy case: a square with straight edges), and `photo_cases`
gives real photos with their objects outlined once by hand (data/masks/photos.json); `benchmark` scores each
map by the intersection over union against a box in the centre, which knows nothing of the image.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np
import torch

from ..images import as_batch, load_image
from ..plots import grid
from ..seeding import generator
from .attribution import attribute, heatmap

# (bundled photo, ImageNet class the default network gives its centre crop): the objects `composite` pastes.
OBJECTS = (("chelsea", "Egyptian cat"), ("coffee", "espresso"), ("motorcycle", "moped"), ("rocket", "space shuttle"),
           ("grace_hopper", "suit"))
BACKGROUNDS = ("grass", "gravel", "brick", "hubble_deep_field", "immunohistochemistry")
# The maps `benchmark` compares, as `attribution.attribute` arguments.
METHODS = {"gradient": ("saliency", {}), "SmoothGrad": ("smoothgrad", dict(samples=8, batch_size=8)),
           "occlusion": ("occlusion", dict(window=48, stride=24, baseline=0.5)),
           "Grad-CAM": ("grad_cam", dict(layer="head.act"))}


def _rgb_uint8(image):
    x = as_batch(image)[0]
    return np.ascontiguousarray((x.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)[..., ::-1])


def grabcut(image, saliency, foreground=0.95, background=0.30, iterations=5, seed=0):
    """A boolean (H, W) mask of the object: GrabCut seeded with the pixels above the `foreground` quantile of
    the map (sure object) and below the `background` quantile (sure background); the rest starts as
    "probably object" above the median and "probably background" below it.

    image: one image (anything `as_batch` takes); saliency: its map, (H, W) or any shape `heatmap` reads.
    """
    import cv2

    if not 0 < background < foreground < 1:
        raise ValueError(f"need 0 < background < foreground < 1, got background={background}, foreground={foreground}")
    s = torch.as_tensor(saliency).detach().float()
    s = heatmap(s if s.dim() == 4 else s.view(1, 1, *s.shape[-2:]))[0] if s.dim() != 2 else s
    img = _rgb_uint8(image)
    if tuple(s.shape) != img.shape[:2]:
        raise ValueError(f"the map is {tuple(s.shape)} but the image is {img.shape[:2]}: they must have one size")
    v = s.numpy()
    hi, mid, lo = np.quantile(v, [foreground, 0.5, background])
    mask = np.where(v >= mid, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[v <= lo] = cv2.GC_BGD
    mask[v >= hi] = cv2.GC_FGD
    cv2.setRNGSeed(int(seed))
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(img, mask, None, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_MASK)
    return torch.from_numpy((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))


def iou(mask, truth):
    """Intersection over union of two boolean masks of one shape (1.0 when both are empty)."""
    a, b = torch.as_tensor(mask).bool(), torch.as_tensor(truth).bool()
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {tuple(a.shape)} and {tuple(b.shape)}")
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def centre_box(shape, area):
    """A boolean mask of the given (H, W) shape holding a centred square of about `area` pixels."""
    h, w = shape
    side = max(1, min(h, w, round(float(area) ** 0.5)))
    top, left = (h - side) // 2, (w - side) // 2
    m = torch.zeros(h, w, dtype=torch.bool)
    m[top:top + side, left:left + side] = True
    return m


def composite(obj, background, size=224, object_size=112, seed=0):
    """(image (1, 3, size, size), mask (size, size)): the centre crop of `obj` at `object_size` px pasted
    onto `background` (resized to `size`) at a random place drawn from `seed`; mask marks the object."""
    g = generator(seed)
    if not 0 < object_size < size:
        raise ValueError(f"object_size must lie between 0 and size={size}, got {object_size}")
    x = as_batch(background, size, channels=3).clone()
    o = as_batch(obj, object_size, channels=3)
    top, left = (int(torch.randint(0, size - object_size + 1, (1,), generator=g)) for _ in range(2))
    x[..., top:top + object_size, left:left + object_size] = o
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top:top + object_size, left:left + object_size] = True
    return x, mask


def composites(n=8, size=224, object_size=112, seed=0):
    """n (image, mask, class name) triples: `OBJECTS` on `BACKGROUNDS`, in turn, at places drawn from `seed`."""
    out = []
    for k in range(n):
        (obj, cls), bg = OBJECTS[k % len(OBJECTS)], BACKGROUNDS[k % len(BACKGROUNDS)]
        x, mask = composite(obj, bg, size, object_size, seed=seed * 1000 + k)
        out.append((x, mask, cls))
    return out


MASKS = pathlib.Path(__file__).resolve().parent.parent / "data" / "masks" / "photos.json"


def photo_cases(size=224, names=None):
    """(image (1, 3, size, size), mask (size, size), class name) for bundled photos whose object was outlined
    once by hand: polygons in the photo's own pixels (data/masks/photos.json), filled, then resized and
    cropped exactly as the photo is (`as_batch`). names: which photos (default: all of them)."""
    from skimage.draw import polygon2mask

    outlines = {k: v for k, v in json.loads(MASKS.read_text()).items() if not k.startswith("_")}
    unknown = [n for n in (names or []) if n not in outlines]
    if unknown:
        raise ValueError(f"no outline for {unknown}; outlined photos: {sorted(outlines)}")
    cases = []
    for name in names or outlines:
        photo = load_image(name)  # decoded once: its size for the mask, its pixels for the image
        width, height = photo.size
        filled = np.zeros((height, width), dtype=bool)
        for polygon in outlines[name]["polygons"]:
            filled |= polygon2mask((height, width), np.array(polygon, dtype=float)[:, ::-1])  # (x, y) -> (row, column)
        filled = torch.from_numpy(filled.astype(np.float32))
        mask = as_batch(filled.view(1, 1, height, width), size)[0, 0] > 0.5
        cases.append((as_batch(photo, size), mask, outlines[name]["target"]))
    return cases


def seed_map(model, x, target, method, **kwargs):
    """The map that seeds GrabCut: `attribution.attribute`, with occlusion and Grad-CAM cut at zero (what raises
    the score is evidence; what lowers it is not the object)."""
    m = attribute(model, x, target, method, **kwargs)
    return m.clamp(min=0) if method in ("occlusion", "grad_cam") else m


def benchmark(model, cases, methods=None, progress=False):
    """{method: [IoU per case]} for GrabCut seeded by each map, and "centred box" (a centred square of the
    object's area). cases: (image, mask, target) triples (`composites`, `photo_cases`); methods: {name: (method, kwargs)}
    for `attribution.attribute` (default `METHODS`)."""
    from tqdm.auto import tqdm

    methods = METHODS if methods is None else methods
    scores = {name: [] for name in methods}
    scores["centred box"] = []
    for x, mask, target in tqdm(cases, desc="segmenting", disable=not progress, leave=False):
        for name, (method, kwargs) in methods.items():
            scores[name].append(iou(grabcut(x, seed_map(model, x, target, method, **kwargs)), mask))
        scores["centred box"].append(iou(centre_box(mask.shape, int(mask.sum())), mask))
    return scores


def score_table(scores, names=None):
    """`benchmark`'s scores as a text table: a row per method, a column per case (`names`), and the mean."""
    n = len(next(iter(scores.values())))
    names = list(names) if names is not None else [f"#{k + 1}" for k in range(n)]
    width = max(8, *(len(str(c)) + 2 for c in names))
    lines = [" " * 12 + "".join(f"{c:>{width}}" for c in names) + f"{'mean':>{width}}"]
    for method, values in scores.items():
        lines.append(f"{method:12s}" + "".join(f"{v:{width}.2f}" for v in values) + f"{sum(values) / len(values):{width}.2f}")
    return "\n".join(lines)


def show_segmentations(model, image, target, methods=None, size=2.6):
    """One row: the image, then for each map the map and its GrabCut mask drawn over the image. Returns the
    Figure and {method: mask}."""
    methods = METHODS if methods is None else methods
    x = as_batch(image, 224)
    pictures, titles, masks = [x], [str(target)], {}
    for name, (method, kwargs) in methods.items():
        masks[name] = grabcut(x, seed_map(model, x, target, method, **kwargs))
        pictures.append(x * (0.25 + 0.75 * masks[name].float()))
        titles.append(f"GrabCut from {name}")
    return grid(pictures, titles, ncols=len(pictures), size=size), masks


__all__ = ["grabcut", "seed_map", "iou", "centre_box", "composite", "composites", "photo_cases", "benchmark", "score_table", "show_segmentations", "OBJECTS",
           "BACKGROUNDS", "METHODS"]
