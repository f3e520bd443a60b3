"""Figures the notebooks share: image grids, prediction bars, attribution maps, curves, activation maps.

One convention for every figure of the course (here, and the `show_*` functions next to their ideas:
`filters.show_filters`, `embeddings.show_embedding`, `adversarial.show_attack`, ...):

- a `show_*` function returns the matplotlib Figure and does not display it: Jupyter shows every new
  figure at the end of the cell (write `fig = show_...(...)` so that it is not drawn twice);
- a function that draws into one axis takes `ax=None` and makes its own figure when none is given;
- `draw_*` functions draw into an axis they are given and return nothing;
- `show(images)` is the quick look: the grid of `grid(images)`, displayed at once.

Images may be PIL images, tensors ((1, 3, H, W), (3, H, W), or (H, W) maps) or numpy arrays.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from .images import as_batch
from .labels import predict_batch


def _displayable(im):
    """numpy array for imshow: (H, W, 3) in [0, 1] for colour, (H, W) for maps; and "map" for maps."""
    if isinstance(im, Image.Image):
        return np.asarray(im.convert("RGB")), None
    if torch.is_tensor(im):
        im = im.detach().cpu().float()
        if im.dim() == 4:
            im = im[0]
        if im.dim() == 3 and im.shape[0] == 3:
            return im.clamp(0, 1).permute(1, 2, 0).numpy(), None
        if im.dim() == 3 and im.shape[0] == 1:
            im = im[0]
        return im.numpy(), "map"
    a = np.asarray(im)
    if a.ndim == 2:
        return a, "map"
    return a, None


def draw_image(ax, im, title=None, fontsize=9, cmap=None):
    """Draw one image (or a map, with `cmap`) on `ax`, without axes."""
    a, kind = _displayable(im)
    artist = ax.imshow(a, cmap=cmap if kind == "map" else None)
    ax.axis("off")
    if title is not None:
        ax.set_title(str(title), fontsize=fontsize)
    return artist


def axes_grid(n, ncols, size, extra_height=0.0):
    """A figure of n axes in rows of ncols, each `size` inches square, all axes hidden: (fig, [axes])."""
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + extra_height), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def finish(fig, suptitle=None, **layout):
    """The figure's title (if any) and a tight layout; returns the figure."""
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(**layout)
    return fig


def grid(images, titles=None, ncols=None, size=2.6, cmap="viridis", suptitle=None, colorbar=False):
    """A Figure with the images in a titled grid (`show` displays it at once).

    images: a list of images or maps, or one (N,3,H,W) batch. Single-channel maps are drawn with `cmap`.
    """

    if torch.is_tensor(images) and images.dim() == 4:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    n = len(images)
    if n == 0:
        raise ValueError("nothing to show: the list of images is empty")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {n} images but {len(titles)} titles")
    fig, axes = axes_grid(n, ncols or min(n, 6), size, 0.4 if suptitle else 0)
    for k, (ax, im) in enumerate(zip(axes, images)):
        artist = draw_image(ax, im, None if titles is None else titles[k], cmap=cmap)
        if colorbar and _displayable(im)[1] == "map":
            fig.colorbar(artist, ax=ax, fraction=0.046, pad=0.04)
    return finish(fig, suptitle)


def show(images, titles=None, **kwargs):
    """Draw images in a titled grid right now (see `grid` for the arguments)."""
    fig = grid(images, titles, **kwargs)
    if plt.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
        plt.close(fig)  # a non-interactive backend (scripts, tests): nothing to display
    else:
        plt.show()


# ---------------------------------------------------------------- predictions

def draw_predictions(ax, prediction, width=18):
    """Horizontal bars of a top-k prediction [(label, probability), ...], most likely on top and dark."""
    pred = prediction[::-1]
    probs = [p for _, p in pred]
    ax.barh(range(len(probs)), probs, color=["#9bb7d4"] * (len(probs) - 1) + ["#1f5f9e"])
    ax.set_yticks(range(len(probs)))
    ax.set_yticklabels([label[:width] for label, _ in pred], fontsize=8)
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", labelsize=7)
    for i, p in enumerate(probs):
        inside = p > 0.75  # a long bar: the number goes inside it, in white
        ax.text(p - 0.02 if inside else p + 0.02, i, f"{p:.1%}", va="center", fontsize=7,
                ha="right" if inside else "left", color="white" if inside else "black")
    ax.spines[["top", "right"]].set_visible(False)


def show_predictions(model, images, titles=None, topk=5, size=224):
    """One column per image: the image on top, its top-k classes as bars below. Returns the Figure.

    images: a list of anything `images.as_batch` takes (files and names are resized to `size`).
    """
    if not isinstance(images, (list, tuple)):
        images = [images]
    batch = [as_batch(im, None if torch.is_tensor(im) else size) for im in images]
    preds = [predict_batch(model, x, topk)[0] for x in batch]
    n = len(batch)
    fig, axes = plt.subplots(2, n, figsize=(2.9 * n, 5.2), gridspec_kw={"height_ratios": [1.15, 1]}, squeeze=False)
    for j, (x, pred) in enumerate(zip(batch, preds)):
        draw_image(axes[0, j], x, None if titles is None else titles[j], fontsize=10)
        draw_predictions(axes[1, j], pred)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- attribution maps (notebooks 03, 04)

def _map2d(m):
    """A (H, W) numpy array from a map of any shape ((1,C,H,W), (C,H,W), (1,H,W), (H,W)); several colour
    channels are reduced with `attribution.heatmap` (max |value|), a single channel keeps its sign."""
    a = m.detach().cpu().float() if torch.is_tensor(m) else torch.as_tensor(np.asarray(m), dtype=torch.float32)
    while a.dim() < 4:
        a = a.unsqueeze(0)
    return (a[0, 0] if a.shape[1] == 1 else a[0].abs().amax(0)).numpy()  # as attribution.heatmap reduces


def overlay(heatmap, image, alpha=0.5, cmap="jet"):
    """A (H, W, 3) array: the heatmap (normalized to [0, 1]) blended over the image."""
    import matplotlib

    img = _displayable(image)[0].astype(np.float64)
    img = img / 255.0 if img.max() > 1 else img
    h = _map2d(heatmap)
    if h.shape != img.shape[:2]:
        t = torch.as_tensor(h, dtype=torch.float32)[None, None]
        h = torch.nn.functional.interpolate(t, size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    h = (h - h.min()) / (h.max() - h.min() + 1e-12)
    colored = matplotlib.colormaps[cmap](h)[..., :3]
    return (1 - alpha) * img + alpha * colored


def gradient_image(grad, percentile=99.5):
    """A signed RGB gradient (1,3,H,W) as an (H, W, 3) picture: 0 is grey, each channel scaled
    by the `percentile` of |values| (how guided backprop and deconvnet maps are shown)."""
    g = grad.detach().cpu().float()
    g = g[0] if g.dim() == 4 else g
    scale = np.percentile(g.abs().numpy(), percentile) + 1e-12
    return (g / (2 * scale) + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()


def draw_map(ax, m, image=None, kind="heat", title=None, percentile=99.5):
    """Draw one attribution map on a matplotlib axis.

    kind: "heat" (map normalized to [0, 1], jet over the image), "signed" (red = positive,
    blue = negative, white = 0, over a grey copy of the image), "gray" (|map| clipped at the
    `percentile`, white = important) or "rgb" (a signed RGB gradient, see gradient_image).
    """
    if kind == "rgb":
        ax.imshow(gradient_image(m, percentile))
    elif kind == "heat":
        ax.imshow(overlay(m, image) if image is not None else _map2d(m), cmap="jet")
    elif kind == "gray":
        a = np.abs(_map2d(m))
        ax.imshow(np.clip(a / (np.percentile(a, percentile) + 1e-12), 0, 1), cmap="gray", vmin=0, vmax=1)
    elif kind == "signed":
        a = _map2d(m)
        v = float(np.abs(a).max()) or 1.0
        if image is not None:
            img = _displayable(image)[0]
            ax.imshow(img.mean(-1), cmap="gray", vmin=0, vmax=1 if img.max() <= 1 else 255)
        ax.imshow(a, cmap="bwr", vmin=-v, vmax=v, alpha=0.65 if image is not None else 1.0)
    else:
        raise ValueError(f"kind must be 'heat', 'signed', 'gray' or 'rgb', got {kind!r}")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)


def show_maps(image, maps, titles=None, kinds="heat", ncols=None, size=2.6, suptitle=None, percentile=99.5):
    """The image, then each map drawn by `draw_map` (kinds: one kind or one per map; "gray" and "rgb" maps are
    clipped at their `percentile`). Returns the Figure."""

    kinds = [kinds] * len(maps) if isinstance(kinds, str) else list(kinds)
    titles = list(titles) if titles is not None else [None] * len(maps)
    fig, axes = axes_grid(len(maps) + 1, ncols or len(maps) + 1, size, 0.4 if suptitle else 0)
    draw_image(axes[0], image, "image")
    for ax, m, kind, title in zip(axes[1:], maps, kinds, titles):
        draw_map(ax, m, image, kind, title, percentile)
    return finish(fig, suptitle)


def show_curves(fractions, curves, title="", xlabel="fraction of pixels", ylabel="probability", ax=None):
    """Deletion or insertion curves: curves = {name: scores (K,)}; the legend gives each area."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.2))
    f = np.asarray(fractions, dtype=float)
    for name, s in curves.items():
        s = np.asarray(s.detach().cpu() if torch.is_tensor(s) else s, dtype=float).reshape(-1)
        ax.plot(f, s, label=f"{name} (area {np.trapezoid(s, f):.3f})", lw=1.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax.figure


# ---------------------------------------------------------------- activations and patches (notebooks 01, 02)

def show_channels(maps, ncols=8, size=1.3, title=None, cmap="viridis", labels=None):
    """One panel per channel of activation maps (C, H, W) (or (1, C, H, W)), each on its own colour scale."""

    maps = torch.as_tensor(maps).detach().cpu().float()
    if maps.dim() == 4:
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(f"expected activation maps (C, H, W), got shape {tuple(maps.shape)}")
    n = maps.shape[0]
    fig, axes = axes_grid(n, min(ncols, n), size, 0.35 if title else 0)
    for k, ax in enumerate(axes[:n]):
        ax.imshow(maps[k].numpy(), cmap=cmap, interpolation="nearest")
        ax.set_title(str(labels[k]) if labels is not None else str(k), fontsize=7, pad=2)
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, pad=0.3)


def show_rows(rows, row_titles=None, col_titles=None, size=1.25):
    """One row of images per entry of `rows` (lists of (3, H, W) tensors in [0, 1]): top patches,
    nearest neighbours. col_titles: None, or one list of titles per row (or None for a row)."""
    nrows, ncols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.2, size * nrows * 1.12), squeeze=False)
    for r, row in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(row):
                continue
            ax.imshow(torch.as_tensor(row[c]).permute(1, 2, 0).clamp(0, 1).numpy())
            if col_titles is not None and col_titles[r] is not None:
                ax.set_title(str(col_titles[r][c]), fontsize=7, pad=2)
        if row_titles is not None:
            axes[r, 0].set_ylabel(str(row_titles[r]), fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig
