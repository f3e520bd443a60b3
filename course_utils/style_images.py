"""Painting-like style images that the course draws itself (no download, no copyright), from a seed.

- "strokes":   thick brush strokes that follow a swirling flow field, in a night-sky palette (blues
               and yellows), loosely after van Gogh. The field is a sum of a few random sine waves;
               each stroke starts at a random point and walks along the field's direction.
- "embers":    the same strokes in a red, orange and black palette.
- "kandinsky": circles, rings, triangles and lines in strong colours with black outlines on cream.
- "mondrian":  a rectangle split recursively, filled with primary colours, with thick black lines.

Each image is a deterministic function of (kind, size, seed), drawn with numpy and Pillow. The names
are known to `images.load_image` (and so to `as_batch`), beside the bundled photos: `load_image("strokes",
size=256)` draws the painting with seed 0; `painting("strokes", 256, seed=3)` draws another one.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PALETTES = {
    "night": [(18, 32, 90), (33, 66, 150), (70, 120, 200), (130, 175, 225), (240, 205, 60), (250, 240, 170),
              (12, 18, 45)],
    "embers": [(120, 10, 10), (200, 40, 20), (240, 110, 20), (250, 190, 60), (30, 10, 10), (90, 30, 60)],
}
DESCRIPTIONS = {"strokes": "brush strokes along a swirling flow, blues and yellows (after van Gogh)",
                "embers": "brush strokes along a swirling flow, reds, oranges and black",
                "kandinsky": "circles, triangles and lines with black outlines on cream",
                "mondrian": "a square split into primary-coloured cells with thick black lines"}
GENERATED = tuple(DESCRIPTIONS)


def _flow_angle(rng, n_waves=4, scale=1.0):
    """A smooth random angle field theta(x, y), x and y in [0, 1]: a sum of random sine waves."""
    freqs = rng.uniform(1.0, 4.0, size=(n_waves, 2)) * rng.choice([-1, 1], size=(n_waves, 2)) * scale
    phases = rng.uniform(0, 2 * math.pi, n_waves)
    amps = rng.uniform(0.6, 1.2, n_waves)

    def theta(x, y):
        return math.pi * sum(a * math.sin(2 * math.pi * (f[0] * x + f[1] * y) + p)
                             for a, f, p in zip(amps, freqs, phases))

    return theta


def brush_strokes(size=256, seed=0, palette="night", strokes=None, width=None):
    """Brush strokes along a swirling flow field (see the module docstring). Returns a PIL RGB image."""
    rng = np.random.default_rng(seed)
    colours = np.array(PALETTES[palette] if isinstance(palette, str) else palette, dtype=float)
    theta = _flow_angle(rng)
    tint = _flow_angle(rng, n_waves=3, scale=0.6)  # a second smooth field chooses the colour
    img = Image.new("RGB", (size, size), tuple(int(c) for c in colours[0]))
    draw = ImageDraw.Draw(img)
    width = width or max(2, size // 48)
    strokes = strokes or int(2.2 * size * size / (width * 12))
    for k in range(strokes):
        x, y = rng.uniform(-0.05, 1.05, 2)
        w = max(1, int(width * rng.uniform(0.7, 1.4) * (1.6 if k < strokes // 4 else 1.0)))
        idx = int((math.sin(tint(x, y)) * 0.5 + 0.5) * (len(colours) - 1) + rng.normal(0, 0.7))
        colour = colours[min(max(idx, 0), len(colours) - 1)] + rng.normal(0, 12, 3)
        pts = [(x * size, y * size)]
        step = width * 0.9 / size
        for _ in range(int(rng.integers(4, 10))):
            a = theta(x, y)
            x, y = x + step * math.cos(a), y + step * math.sin(a)
            pts.append((x * size, y * size))
        draw.line(pts, fill=tuple(int(c) for c in np.clip(colour, 0, 255)), width=w, joint="curve")
    return img.filter(ImageFilter.SMOOTH)


def kandinsky(size=256, seed=0):
    """Circles, rings, triangles and lines in strong colours on cream (see the module docstring)."""
    rng = np.random.default_rng(seed)
    colours = [(220, 40, 40), (250, 200, 30), (30, 70, 170), (20, 20, 20), (40, 150, 90), (240, 120, 30),
               (120, 60, 160)]
    img = Image.new("RGB", (size, size), (238, 228, 200))
    draw = ImageDraw.Draw(img)
    s = size / 256
    for _ in range(14):  # circles and rings
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(8, 45) * s
        c = colours[rng.integers(len(colours))]
        if rng.random() < 0.5:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c, outline=(20, 20, 20), width=max(1, int(2 * s)))
        else:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=c, width=max(2, int(6 * s)))
    for _ in range(8):  # triangles
        pts = [tuple(rng.uniform(0, size, 2)) for _ in range(3)]
        pts = [(pts[0][0] + (p[0] - pts[0][0]) * 0.35, pts[0][1] + (p[1] - pts[0][1]) * 0.35) for p in pts]
        draw.polygon(pts, fill=colours[rng.integers(len(colours))], outline=(20, 20, 20))
    for _ in range(16):  # lines
        p, q = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
        draw.line([tuple(p), tuple(q)], fill=(20, 20, 20), width=max(1, int(rng.uniform(1, 4) * s)))
    return img


def mondrian(size=256, seed=0, depth=5):
    """A rectangle split recursively into primary-coloured and white cells with thick black lines."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (245, 243, 235))
    draw = ImageDraw.Draw(img)
    colours = [(245, 243, 235)] * 5 + [(210, 30, 30), (250, 210, 20), (20, 60, 160)]
    line = max(2, size // 40)

    def split(x0, y0, x1, y1, d):
        w, h = x1 - x0, y1 - y0
        if d == 0 or min(w, h) < 6 * line or (d < depth - 1 and rng.random() < 0.25):
            draw.rectangle([x0, y0, x1, y1], fill=colours[rng.integers(len(colours))], outline=(15, 15, 15),
                           width=line)
            return
        t = rng.uniform(0.3, 0.7)
        if w > h:
            xm = int(x0 + t * w)
            split(x0, y0, xm, y1, d - 1), split(xm, y0, x1, y1, d - 1)
        else:
            ym = int(y0 + t * h)
            split(x0, y0, x1, ym, d - 1), split(x0, ym, x1, y1, d - 1)

    split(0, 0, size - 1, size - 1, depth)
    return img


def painting(kind="strokes", size=256, seed=0):
    """A generated style image: kind is one of "strokes", "embers", "kandinsky", "mondrian"."""
    if kind == "strokes":
        return brush_strokes(size, seed, "night")
    if kind == "embers":
        return brush_strokes(size, seed, "embers")
    if kind == "kandinsky":
        return kandinsky(size, seed)
    if kind == "mondrian":
        return mondrian(size, seed)
    raise ValueError(f"unknown painting {kind!r}: choose one of {', '.join(GENERATED)}")


__all__ = ["painting", "brush_strokes", "kandinsky", "mondrian", "GENERATED", "DESCRIPTIONS", "PALETTES"]
