"""How to judge a saliency map: deletion and insertion curves, and sanity checks by randomization.

- Deletion: remove the pixels the map calls most important first (replace them by a baseline)
  and watch the class probability fall; a good map makes it fall fast (small area under the
  curve). Insertion: start from a blurred image and put the most important pixels back first; a
  good map makes the probability rise fast (large area). Petsiuk, Das & Saenko, "RISE:
  Randomized Input Sampling for Explanation of Black-box Models", BMVC 2018.
- Sanity checks: randomize the model's weights from the top layer down, cascading, and see
  whether the map changes. A map that stays the same cannot be explaining what the model
  learned. Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018.
"""
from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import torch
from torch import nn

from ..images import as_batch
from ..labels import class_scores, targets
from ..layers import get_layer
from ..plots import draw_map, finish, show_curves
from ..seeding import generator
from .attribution import baseline_image, heatmap

# ---------------------------------------------------------------- deletion and insertion

def _pixel_ranks(attribution, size):
    """Rank of each pixel, (N, H*W), 0 = most important. Channels are reduced with their max
    (signed: a pixel whose occlusion *raises* the score ranks last); ties keep reading order."""
    a = attribution.detach()
    importance = heatmap(a, reduce="max") if a.dim() == 4 else a
    if tuple(importance.shape[-2:]) != tuple(size):
        raise ValueError(f"the map is {tuple(importance.shape[-2:])} but the image is {tuple(size)}")
    order = importance.flatten(1).argsort(dim=1, descending=True, stable=True)
    return order.argsort(dim=1)


def _curve(model, x, target, attribution, steps, baseline, score, batch_size, insert):
    x = as_batch(x, device=model)
    classes = targets(target, len(x), x.device)
    base = baseline_image(x, baseline)
    ranks = _pixel_ranks(attribution.to(x.device), x.shape[2:])
    fractions = torch.linspace(0, 1, steps + 1)
    counts = (fractions * ranks.shape[1]).round().long().to(x.device)
    curves = []
    for n in range(len(x)):
        changed = (ranks[n][None] < counts[:, None]).view(steps + 1, 1, *x.shape[2:]).to(x.dtype)
        start, end = (base[n], x[n]) if insert else (x[n], base[n])
        images = start * (1 - changed) + end * changed
        curves.append(class_scores(model, images, score, batch_size)[:, classes[n]])
    return fractions, torch.stack(curves).cpu()


def deletion_curve(model, x, target, attribution, steps=16, baseline="blur", score="probability", batch_size=32):
    """(fractions (steps+1,), scores (N, steps+1)): the target's probability after the most
    important fraction of the pixels (by `attribution`) is replaced by `baseline` (0 = black).
    All steps+1 images of a curve go through the model in batches."""
    return _curve(model, x, target, attribution, steps, baseline, score, batch_size, insert=False)


def insertion_curve(model, x, target, attribution, steps=16, baseline="blur", score="probability", batch_size=32):
    """(fractions, scores (N, steps+1)): start from `baseline` (a blurred copy) and put back the
    most important fraction of the pixels first."""
    return _curve(model, x, target, attribution, steps, baseline, score, batch_size, insert=True)


def area_under_curve(fractions, scores):
    """Trapezoid area under scores (..., K) over fractions (K,) in [0, 1]."""
    return torch.trapezoid(torch.as_tensor(scores, dtype=torch.float32),
                           torch.as_tensor(fractions, dtype=torch.float32), dim=-1)


def judge_maps(model, x, target, maps, steps=16, seed=0):
    """Deletion and insertion curves of several maps of one image, beside a random map (the reference every
    map must beat, drawn from `seed`): {name: (fractions, deletion scores, insertion scores)}, one row each."""
    x = as_batch(x, device=model)
    maps = dict(maps, random=torch.rand(x.shape, generator=generator(seed)))
    out = {}
    for name, m in maps.items():
        fractions, deletion = deletion_curve(model, x, target, m, steps)
        _, insertion = insertion_curve(model, x, target, m, steps)
        out[name] = (fractions, deletion[0], insertion[0])
    return out


def show_judged(judged, title="", axes=None):
    """The deletion and the insertion curves of `judge_maps` on two axes (the legends give the areas);
    returns the Figure."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
    fractions = next(iter(judged.values()))[0]
    show_curves(fractions, {n: d for n, (_, d, _) in judged.items()}, title=f"deletion, {title}", ax=axes[0])
    show_curves(fractions, {n: i for n, (_, _, i) in judged.items()}, title=f"insertion, {title}", ax=axes[1])
    return axes[0].figure


# ---------------------------------------------------------------- sanity checks

def share_inside(attribution, mask):
    """The share of a map's total that lies inside a mask (the energy-based pointing game of Wang et al.,
    Score-CAM, CVPR Workshops 2020): 1 when all of it falls on the object, the mask's share of the pixels
    when the map is flat. attribution: (N, C, H, W) (reduced by `heatmap`), (N, H, W) or (H, W), no negative
    values; mask: boolean, broadcastable to the map."""
    m = torch.as_tensor(attribution).detach().float()
    m = heatmap(m) if m.dim() == 4 else m
    if bool((m < 0).any()):
        raise ValueError("share_inside reads magnitudes: the map has negative values; pass m.abs() or m.clamp(min=0)")
    total = m.sum()
    return float((m * torch.as_tensor(mask).to(m.dtype)).sum() / total) if total > 0 else 0.0


def rank_correlation(a, b):
    """Spearman rank correlation between two maps, per image: (N,) for (N, ...) inputs.
    Tied values get their average rank, as in scipy.stats.spearmanr."""
    def ranks(v):
        _, inverse, counts = torch.unique(v, return_inverse=True, return_counts=True)
        counts = counts.double()
        first = counts.cumsum(0) - counts
        return (first + (counts - 1) / 2)[inverse]

    a, b = a.detach().flatten(1).cpu(), b.detach().flatten(1).cpu()
    if a.shape != b.shape:
        raise ValueError(f"the maps differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    out = []
    for u, v in zip(a, b):
        ru, rv = ranks(u), ranks(v)
        ru, rv = ru - ru.mean(), rv - rv.mean()
        denom = (ru.norm() * rv.norm()).item()
        out.append((ru @ rv).item() / denom if denom > 0 else float("nan"))
    return torch.tensor(out, dtype=torch.float64)


def randomization_steps(model: nn.Module) -> list[str]:
    """The layers to randomize, top (output) first: the model's children that have weights,
    with plain containers (nn.Sequential, nn.ModuleList) opened one level, in reverse order.
    For EfficientNet-Lite0: classifier, head, blocks.15, ..., blocks.0, stem."""
    names = []
    for name, child in model.named_children():
        if type(child) in (nn.Sequential, nn.ModuleList):
            names += [f"{name}.{sub}" for sub, m in child.named_children() if any(True for _ in m.parameters())]
        elif any(True for _ in child.parameters()):
            names.append(name)
    return names[::-1]


@torch.no_grad()
def randomize_(module: nn.Module, seed=0):
    """Replace every weight and bias of `module` (in place) by Gaussian noise with the same mean
    and standard deviation as the trained tensor; buffers (batch-norm statistics) are kept, so
    activations keep their scale and only the learned structure is destroyed. seed: an int or a
    torch.Generator (a cascade passes one generator through all its steps)."""
    g = generator(seed)
    for p in module.parameters():
        std = p.std(correction=0) if p.numel() > 1 else p.abs()
        noise = torch.randn(p.shape, generator=g).to(p.device, p.dtype)
        p.copy_(noise * std + p.mean())


def cascading_randomization(model, x, target, methods, steps=None, seed=0, progress=True):
    """Adebayo et al.'s cascading randomization on a copy of `model` (the model is untouched).

    methods: {name: f(model, x, target)}. steps: top first, each a layer name or a list of names
    randomized together (default randomization_steps(model), one layer a step); each step keeps
    the layers of the earlier steps random. Returns (step_names, maps): step_names[0] is
    "trained", maps[name][k] is the method's map after step k.
    """
    from tqdm.auto import tqdm

    steps = [[s] if isinstance(s, str) else list(s) for s in (steps if steps is not None else randomization_steps(model))]
    for name in (n for group in steps for n in group):
        get_layer(model, name)  # a wrong name fails now, with the valid ones listed
    randomized = copy.deepcopy(model)
    g = generator(seed)
    maps = {name: [fn(randomized, x, target).detach()] for name, fn in methods.items()}
    for group in tqdm(steps, desc="randomizing", disable=not progress):
        for layer in group:
            randomize_(get_layer(randomized, layer), g)
        for name, fn in methods.items():
            maps[name].append(fn(randomized, x, target).detach())
    labels = [g[0] if len(g) == 1 else f"{g[0]} ... {g[-1]}" for g in steps]
    return ["trained"] + labels, maps


def cascade_correlations(maps):
    """{method: [Spearman rank correlation of each map with the trained one]} for the maps of
    `cascading_randomization`, on |map| reduced over colour channels (`attribution.heatmap`)."""
    return {method: [float(rank_correlation(heatmap(ms[0]), heatmap(m))[0]) for m in ms] for method, ms in maps.items()}


def show_cascade(step_names, maps, image, kinds, title=None):
    """The maps of `cascading_randomization`: one row per method (drawn as kinds[method], see
    `plots.draw_map`), one column per step, trained on the left. Returns the Figure."""
    fig, axes = plt.subplots(len(maps), len(step_names), figsize=(2.3 * len(step_names), 2.4 * len(maps)),
                             squeeze=False)
    for row, (method, ms) in enumerate(maps.items()):
        for col, m in enumerate(ms):
            draw_map(axes[row, col], m, image, kinds[method], title=step_names[col] if row == 0 else None)
        axes[row, 0].text(-20, image.shape[-2] / 2, method, rotation=90, va="center", ha="right", fontsize=10)
    return finish(fig, title)


def show_correlations(step_names, correlations, ax=None):
    """The rank correlations of `cascade_correlations` against the randomization steps. Returns the Figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    for method, rho in correlations.items():
        ax.plot(range(len(step_names)), rho, "o-", label=method)
    ax.set_xticks(range(len(step_names)), [n.replace(" ... ", "…") for n in step_names], rotation=30, ha="right",
                  fontsize=8)
    ax.set_ylabel("rank correlation with trained")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax.figure
