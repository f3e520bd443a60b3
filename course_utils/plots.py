"""Figures the notebooks share: images with their top-k prediction bars, maps over images."""
from __future__ import annotations

import numpy as np
import torch

from .images import _as_displayable, load_image
from .labels import predict_batch


def prediction_bars(model, images, titles=None, topk=5, size=224):
    """One column per image: the image on top, its top-k classes as horizontal bars below.

    images: a list of anything `load_image` takes (resized to `size`) or (1,3,H,W) tensors.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from .images import to_tensor

    if not isinstance(images, (list, tuple)):
        images = [images]
    batch = [to_tensor(im) if torch.is_tensor(im) else to_tensor(load_image(im, size=size)) for im in images]
    preds = [predict_batch(model, x, topk)[0] for x in batch]
    n = len(batch)
    fig, axes = plt.subplots(2, n, figsize=(2.9 * n, 5.2), gridspec_kw={"height_ratios": [1.15, 1]}, squeeze=False)
    for j, (x, pred) in enumerate(zip(batch, preds)):
        axes[0, j].imshow(_as_displayable(x)[0])
        axes[0, j].axis("off")
        if titles is not None:
            axes[0, j].set_title(str(titles[j]), fontsize=10)
        labels = [label for label, _ in pred][::-1]
        probs = [p for _, p in pred][::-1]
        ax = axes[1, j]
        ax.barh(range(len(probs)), probs, color=["#9bb7d4"] * (len(probs) - 1) + ["#1f5f9e"])
        ax.set_yticks(range(len(probs)))
        ax.set_yticklabels([lb[:18] for lb in labels], fontsize=8)
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=7)
        for i, p in enumerate(probs):
            ax.text(min(p + 0.02, 0.75), i, f"{p:.0%}", va="center", fontsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def overlay(heatmap, image, alpha=0.5, cmap="jet"):
    """A (H, W, 3) array: the heatmap (normalized to [0, 1]) blended over the image."""
    import matplotlib

    img = _as_displayable(image)[0].astype(np.float64)
    img = img / 255.0 if img.max() > 1 else img
    h = heatmap.detach().cpu().float().squeeze().numpy() if torch.is_tensor(heatmap) else np.asarray(heatmap, float)
    if h.shape != img.shape[:2]:
        t = torch.as_tensor(h, dtype=torch.float32)[None, None]
        h = torch.nn.functional.interpolate(t, size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    h = (h - h.min()) / (h.max() - h.min() + 1e-12)
    colored = matplotlib.colormaps[cmap](h)[..., :3]
    return (1 - alpha) * img + alpha * colored


# ---------------------------------------------------------------- attribution maps (notebooks 03, 04)

def _map2d(m):
    """A (H, W) numpy array from a map tensor/array ((1,C,H,W), (C,H,W), (1,H,W) or (H,W));
    colour channels are reduced with max |value| (Simonyan et al.)."""
    a = m.detach().cpu().float() if torch.is_tensor(m) else torch.as_tensor(np.asarray(m), dtype=torch.float32)
    while a.dim() > 3:
        a = a[0]
    if a.dim() == 3:
        a = a[0] if a.shape[0] == 1 else a.abs().amax(0)
    return a.numpy()


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
        ax.imshow(overlay(_map2d(m), image) if image is not None else _map2d(m), cmap="jet")
    elif kind == "gray":
        a = np.abs(_map2d(m))
        ax.imshow(np.clip(a / (np.percentile(a, percentile) + 1e-12), 0, 1), cmap="gray", vmin=0, vmax=1)
    elif kind == "signed":
        a = _map2d(m)
        v = float(np.abs(a).max()) or 1.0
        if image is not None:
            ax.imshow(_as_displayable(image)[0].mean(-1), cmap="gray", vmin=0, vmax=1 if _as_displayable(image)[0].max() <= 1 else 255)
        ax.imshow(a, cmap="bwr", vmin=-v, vmax=v, alpha=0.65 if image is not None else 1.0)
    else:
        raise ValueError(f"kind must be 'heat', 'signed', 'gray' or 'rgb', got {kind!r}")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)


def maps_figure(image, maps, titles=None, kinds="heat", ncols=None, size=2.6, suptitle=None):
    """The image, then each map drawn by `draw_map` (kinds: one kind or one per map). Returns the Figure."""
    import matplotlib.pyplot as plt

    kinds = [kinds] * len(maps) if isinstance(kinds, str) else list(kinds)
    titles = list(titles) if titles is not None else [None] * len(maps)
    n = len(maps) + 1
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(_as_displayable(image)[0])
    axes.flat[0].set_title("image", fontsize=9)
    for ax, m, kind, title in zip(list(axes.flat)[1:], maps, kinds, titles):
        draw_map(ax, m, image, kind, title)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def curves_figure(fractions, curves, title="", xlabel="fraction of pixels", ylabel="probability", ax=None):
    """Deletion or insertion curves: curves = {name: scores (K,)}; the legend gives each area."""
    import matplotlib.pyplot as plt

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
