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
