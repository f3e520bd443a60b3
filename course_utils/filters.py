"""Look at the weights: filter banks as images, how smooth they are, and units that died.

A first-layer filter of an RGB network is a small (3, k, k) image: drawing each one, scaled
to the display range, gives the classic picture of oriented edges and colour blobs
(Krizhevsky, Sutskever & Hinton, *ImageNet Classification with Deep Convolutional Neural
Networks*, NIPS 2012, Fig. 3). Noisy filters and dead ReLU units are the symptoms of bad
training that the lecture (cs231n, "Visualizing and Understanding") asks us to look for.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .images import as_batch
from .layers import capture, evaluating
from .plots import draw_image


def normalize_filters(weights, mode="minmax"):
    """Scale every filter of a bank (O, I, k, k) to [0, 1] for display, each on its own.

    mode="minmax":    (w - min) / (max - min) over the filter's I*k*k numbers, so every filter
                      uses the full range and the colours of one filter keep their ratios;
                      a constant filter becomes 0.5 (mid grey).
    mode="symmetric": 0.5 + w / (2 max|w|), so a zero weight is grey, positive bright,
                      negative dark (the sign stays visible; contrast is lower).
    """
    w = torch.as_tensor(weights).detach().float()
    if w.dim() != 4:
        raise ValueError(f"a filter bank has shape (out_channels, in_channels, k, k), got {tuple(w.shape)}")
    flat = w.flatten(1)
    if mode == "minmax":
        lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        span = hi - lo
        out = torch.where(span > 0, (flat - lo) / span.clamp_min(1e-12), torch.full_like(flat, 0.5))
    elif mode == "symmetric":
        m = flat.abs().max(1, keepdim=True).values
        out = torch.where(m > 0, 0.5 + flat / (2 * m.clamp_min(1e-12)), torch.full_like(flat, 0.5))
    else:
        raise ValueError(f"mode must be 'minmax' or 'symmetric', got {mode!r}")
    return out.view_as(w)


def filter_grid(weights, ncols=None, zoom=8, pad=1, mode="minmax", background=1.0):
    """One image (numpy, (H, W, 3) or (H, W)) tiling a filter bank, each filter enlarged `zoom` times.

    weights: (O, 3, k, k) -> colour tiles; (O, 1, k, k) or (O, k, k) -> grey tiles. For a bank
    whose filters see more than 3 input channels, pick slices first (`w[:, j:j+1]`).
    Enlarging is nearest-neighbour: every weight stays a visible square.
    """
    w = torch.as_tensor(weights).detach().float()
    if w.dim() == 3:
        w = w.unsqueeze(1)
    if w.dim() != 4 or w.shape[1] not in (1, 3):
        raise ValueError(
            f"filter_grid draws banks of shape (O, 3, k, k) or (O, 1, k, k), got {tuple(w.shape)}; "
            "filters of deeper layers see many input channels: draw one input channel at a time, w[:, j:j+1]")
    n, c, kh, kw = w.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    tiles = normalize_filters(w, mode).repeat_interleave(zoom, 2).repeat_interleave(zoom, 3)
    th, tw = kh * zoom, kw * zoom
    out = torch.full((c, nrows * (th + pad) + pad, ncols * (tw + pad) + pad), float(background))
    for k in range(n):
        r, q = divmod(k, ncols)
        out[:, pad + r * (th + pad):pad + r * (th + pad) + th, pad + q * (tw + pad):pad + q * (tw + pad) + tw] = tiles[k]
    return out[0].numpy() if c == 1 else out.permute(1, 2, 0).numpy()


def show_filters(weights, ncols=None, zoom=8, mode="minmax", title=None, ax=None, size=None, pad=None):
    """`filter_grid(weights)` drawn on `ax` (or a new figure); returns the Figure."""
    pad = max(1, zoom // 3) if pad is None else pad
    img = filter_grid(weights, ncols=ncols, zoom=zoom, mode=mode, pad=pad)
    if ax is None:
        h, w = img.shape[:2]
        s = size or 5.0
        fig, ax = plt.subplots(figsize=(s, s * h / w + (0.3 if title else 0)))
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def show_filter_and_map(weight, channel, act, x, layer):
    """One channel of a layer: its filter (zero at grey, `show_filters`), what it computes on the photo x
    (act: that channel's (H, W) map) and the photo. weight: the layer's (C, C_in, k, k) filters. Returns the Figure."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
    show_filters(weight[channel:channel + 1], ncols=1, zoom=20, mode="symmetric", ax=axes[0],
                 title=f"{layer}.conv, filter {channel}\n{tuple(weight.shape[1:])}")
    m = axes[1].imshow(act.numpy(), cmap="viridis")
    axes[1].set_title(f"{layer}.act, channel {channel}", fontsize=10)
    axes[1].axis("off")
    fig.colorbar(m, ax=axes[1], fraction=0.046)
    draw_image(axes[2], x)
    return fig


def first_conv(model: nn.Module):
    """(name, module) of the first 2-D convolution of `model` (in definition order)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise ValueError(f"{type(model).__name__} has no Conv2d layer")


def filter_roughness(weights):
    """How noisy a filter bank is: mean squared difference of neighbouring weights / mean squared weight.

    Smooth filters (blobs, edges) score well below 1; white noise scores about 2 (each
    difference of two independent weights has twice their variance).
    """
    w = torch.as_tensor(weights).detach().double()
    if w.dim() != 4:
        raise ValueError(f"expected a filter bank (O, I, k, k), got shape {tuple(w.shape)}")
    dy, dx = w.diff(dim=2), w.diff(dim=3)
    diffs = torch.cat([dy.flatten(1), dx.flatten(1)], 1).pow(2).mean(1)
    return float((diffs / w.flatten(1).pow(2).mean(1).clamp_min(1e-30)).mean())


def dead_fraction(activations, threshold=0.0):
    """Fraction of units (channels, dim 1) that are <= threshold for every input and position.

    activations: (N, C) or (N, C, H, W), the outputs of a ReLU-like layer over a dataset.
    """
    a = torch.as_tensor(activations)
    if a.dim() < 2:
        raise ValueError(f"activations need a batch and a unit dimension (N, C, ...), got shape {tuple(a.shape)}")
    fired = (a > threshold).transpose(0, 1).flatten(1).any(1)
    return 1.0 - float(fired.float().mean())


def dead_units(model, x, layers, batch_size=256, threshold=0.0):
    """{layer: fraction of its units that are <= threshold for every input in x}, batch by batch, in eval mode.

    Streams over `x` (no need to hold all activations, as `layers.activations` would).
    """
    if isinstance(layers, str):
        layers = [layers]
    x = as_batch(x, device=model)
    fired = {}
    with evaluating(model), torch.no_grad(), capture(model, list(layers)) as acts:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
            for name in layers:
                f = (acts[name] > threshold).transpose(0, 1).flatten(1).any(1)
                fired[name] = f if name not in fired else fired[name] | f
    return {name: 1.0 - float(fired[name].float().mean()) for name in layers}


def active_fraction(model, x, layers, batch_size=256, threshold=0.0):
    """{layer: fraction of all its activations (every unit, position and input in x) that are > threshold}:
    how dense a layer's code is (1: every unit fires everywhere; small: a sparse code). In eval mode."""
    if isinstance(layers, str):
        layers = [layers]
    x = as_batch(x, device=model)
    on, total = dict.fromkeys(layers, 0), dict.fromkeys(layers, 0)
    with evaluating(model), torch.no_grad(), capture(model, list(layers)) as acts:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
            for name in layers:
                on[name] += int((acts[name] > threshold).sum())
                total[name] += acts[name].numel()
    return {name: on[name] / total[name] for name in layers}


def show_filter_banks(banks, titles=None, ncols=4, zoom=6, mode="minmax", size=2.6):
    """Several filter banks in a row (snapshots during training, or several runs); returns the Figure."""
    banks = list(banks)
    fig, axes = plt.subplots(1, len(banks), figsize=(size * len(banks), size * 1.25), squeeze=False)
    for k, (ax, w) in enumerate(zip(axes[0], banks)):
        show_filters(w, ncols=ncols, zoom=zoom, mode=mode, ax=ax, title=None if titles is None else titles[k])
    fig.tight_layout()
    return fig
