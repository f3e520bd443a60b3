"""The figures of notebook 10: an attack beside its image, success and accuracy curves, the linear
explanation's numbers, the digits an attack changes. The attacks themselves are in `attacks`."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..images import as_batch
from ..labels import class_scores, predict_batch
from ..plots import draw_image, draw_predictions, grid
from .attacks import perturbation_norms


def show_attack(model, x, x_adv, titles=("original", "adversarial"), topk=5, magnify=None):
    """A figure: the original, the adversarial image and their difference magnified (top row);
    the top-k predictions of both and the perturbation's sizes (bottom row). Returns the Figure."""
    x, x_adv = as_batch(x)[:1].cpu(), as_batch(x_adv)[:1].cpu()
    d = x_adv - x
    m = float(d.abs().max())
    magnify = magnify or (0.5 / m if m > 0 else 1.0)
    norms = perturbation_norms(x, x_adv)
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2), gridspec_kw={"height_ratios": [1.2, 1]})
    pics = [x, x_adv, (0.5 + magnify * d).clamp(0, 1)]
    names = list(titles) + [f"difference x {magnify:.0f}  (grey = 0)"]
    for ax, pic, name in zip(axes[0], pics, names):
        draw_image(ax, pic, name, fontsize=10)
    for ax, img in zip(axes[1, :2], (x, x_adv)):
        draw_predictions(ax, predict_batch(model, img, topk)[0], width=20)
    ax = axes[1, 2]
    ax.axis("off")
    ax.text(0.0, 0.5, "size of the change\n\n"
            f"L-inf  {norms['linf_255']:.2f} / 255\n"
            f"RMS    {norms['rms_255']:.2f} / 255\n"
            f"L2     {norms['l2']:.2f}\n"
            f"       = {norms['l2_relative']:.1%} of the\n"
            "       image's own L2",
            family="monospace", fontsize=9, va="center")
    fig.tight_layout()
    return fig


def show_attacks(model, x, adversarials, magnify=None):
    """A grid: the adversarial images of one photo (top row, titled with the model's top class) and
    their differences from x, magnified (bottom row). adversarials = {name: image}. Returns the Figure."""
    x = as_batch(x)[:1].cpu()
    adversarials = {name: as_batch(xa)[:1].cpu() for name, xa in adversarials.items()}
    diffs = {name: xa - x for name, xa in adversarials.items()}
    m = max(float(d.abs().max()) for d in diffs.values())
    magnify = magnify or (0.5 / m if m > 0 else 1.0)
    images, titles = [], []
    for name, xa in adversarials.items():
        (label, p), = predict_batch(model, xa, 1)[0]
        images.append(xa)
        titles.append(f"{name}\n{label[:18]} {p:.0%}")
    for name, d in diffs.items():
        n = perturbation_norms(x, x + d)
        images.append((0.5 + magnify * d).clamp(0, 1))
        titles.append(f"x {magnify:.0f}: Linf {n['linf_255']:.1f}/255, L2 {n['l2']:.2f}")
    return grid(images, titles, ncols=len(adversarials), size=2.5)


def show_linearity(dims, aligned, random_signs, eps_levels, predicted, actual):
    """The linear explanation in two plots: the score change of aligned and random-sign perturbations
    against the number of inputs (`score_changes`), and a network's predicted and measured loss increase
    against eps in grey levels (`linearity_check`). Returns the Figure."""
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 4.3))
    a0.loglog(dims, aligned, "o-", ms=3, label=r"aligned with w: $\varepsilon\|w\|_1$")
    a0.loglog(dims, random_signs, "s-", ms=3, label=r"random signs: $|\varepsilon\, s^\top w|$")
    a0.axhline(5, color="gray", ls=":", label="shift 5: 5% -> 88% in the lecture example")
    for n, name, ha in [(10, " lecture\n n = 10", "left"), (64, " 8x8 digits\n n = 64", "left"),
                        (150528, "224x224x3 \nn = 150528 ", "right")]:
        a0.axvline(n, color="k", lw=0.5, alpha=0.4)
        a0.text(n, 6e3, name, fontsize=8, ha=ha, va="top")
    a0.set(xlabel="number of inputs n", ylabel="change of the score", ylim=(3e-3, 1e4),
           title="every input moved by 1/255", xlim=(6, 4e5))
    a0.legend(fontsize=8, loc="lower right")
    a1.loglog(eps_levels, predicted, "o--", label=r"straight line: $\varepsilon\|\nabla_x L\|_1$")
    a1.loglog(eps_levels, actual, "o-", label="measured on EfficientNet-Lite0")
    a1.set(xlabel="eps (grey levels, 1/255)", ylabel="increase of the loss of the top class",
           title="the cat photo, one FGSM step")
    a1.set_xticks(eps_levels, [f"{e:g}" for e in eps_levels])
    a1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_transfer(rates, title):
    """Success rates of attacks on the network they were made on and on another one:
    rates = {attack: (rate on the attacked network, rate on the other)}. Returns the Figure."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = np.arange(len(rates))
    ax.bar(xs - 0.2, [r[0] for r in rates.values()], 0.4, label="Lite0 (attacked, white-box)")
    ax.bar(xs + 0.2, [r[1] for r in rates.values()], 0.4, label="Lite1 (transfer)")
    for i, (r0, r1) in enumerate(rates.values()):
        ax.text(i - 0.2, r0 + 0.02, f"{r0:.0%}", ha="center", fontsize=8)
        ax.text(i + 0.2, r1 + 0.02, f"{r1:.0%}", ha="center", fontsize=8)
    ax.set_xticks(xs, list(rates))
    ax.set(ylim=(0, 1.12), ylabel="top class changed", title=title)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def show_digit_attack(eps_values, curves, x, x_adv, labels, predicted, attack="FGSM"):
    """Error rate against eps for a digits classifier ({name: rates}), beside a few digits (top) and their
    attacked versions (bottom, titled `attack` and the prediction, in red when fooled). Returns the Figure."""
    fig = plt.figure(figsize=(12, 3.8))
    ax = fig.add_subplot(1, 2, 1)
    for (name, rates), style in zip(curves.items(), ("o-", "s--", "^:")):
        ax.plot(eps_values, rates, style, label=name)
    ax.set(xlabel="eps (fraction of the pixel range)", ylabel="error rate on the test digits",
           title="logistic regression on 8x8 digits", ylim=(0, 1.03))
    ax.legend(fontsize=8)
    for k in range(len(x)):
        fooled = int(predicted[k]) != int(labels[k])
        for row, (img, title) in enumerate([(x[k], f"digit {int(labels[k])}"), (x_adv[k], f"{attack}: {int(predicted[k])}")]):
            a = fig.add_subplot(2, 10, 6 + k + 10 * row)
            a.imshow(img[0], cmap="gray_r", vmin=0, vmax=1)
            a.set_title(title, fontsize=8, color="red" if row and fooled else "black")
            a.axis("off")
    fig.tight_layout()
    return fig


def show_digit_change(model, x, x_adv, title=""):
    """One digit before and after an attack, their difference (grey = 0), and the model's ten class
    probabilities for both. Returns the Figure."""
    x, x_adv = as_batch(x)[:1], as_batch(x_adv)[:1]
    p = class_scores(model, torch.cat([x, x_adv]), "probability")
    d = x_adv - x
    fig, axes = plt.subplots(1, 4, figsize=(11, 2.8), gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    for ax, im, name, k in [(axes[0], x, "digit", 0), (axes[1], x_adv, "attacked", 1)]:
        ax.imshow(im[0, 0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{name}: {int(p[k].argmax())} ({float(p[k].max()):.0%})", fontsize=10)
    m = float(d.abs().max()) or 1.0
    axes[2].imshow(d[0, 0], cmap="bwr", vmin=-m, vmax=m)
    axes[2].set_title(f"change: L2 {float(d.norm()):.2f}, Linf {m:.2f}", fontsize=10)
    for ax in axes[:3]:
        ax.axis("off")
    for k, (label, color) in enumerate([("before", "#9bb7d4"), ("after", "#1f5f9e")]):
        axes[3].bar(torch.arange(10) + (k - 0.5) * 0.4, p[k].cpu(), 0.4, label=label, color=color)
    axes[3].set(xticks=range(10), ylim=(0, 1), xlabel="class", title="probabilities")
    axes[3].legend(fontsize=8)
    axes[3].spines[["top", "right"]].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def show_robust_accuracy(eps_values, accuracies, train_eps=None, xlabel="eps (fraction of the pixel range)", ax=None):
    """Accuracy under attack against eps, one line per model: accuracies = {name: [accuracy at each eps]};
    a dotted line marks the eps a robust model was trained at. Returns the Figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for (name, acc), style in zip(accuracies.items(), ("o-", "s-", "^--", "d:")):
        ax.plot(eps_values, acc, style, label=name)
    if train_eps is not None:
        ax.axvline(train_eps, color="grey", ls=":", lw=1)
        ax.text(train_eps, 1.0, " training eps", fontsize=8, va="top", color="grey")
    ax.set(xlabel=xlabel, ylabel="accuracy under PGD", ylim=(-0.02, 1.05))
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax.figure


def _level(v):
    """A grey level as text: 2, 0.5 -> '1/2', 0.03125 -> '1/32'."""
    return f"1/{round(1 / v)}" if 0 < v < 1 and abs(1 / v - round(1 / v)) < 1e-6 else f"{v:g}"


def show_success(eps_values, curves, title="attack success over the bundled photos", ax=None):
    """Success rate against eps (in grey levels) for each method: curves = {name: [rate, ...]}.
    Markers shrink from one method to the next, so lines that coincide stay visible."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    levels = [e * 255 for e in eps_values]
    styles = [("o", 10, "-"), ("s", 7, "--"), ("^", 5, ":"), ("D", 4, "-.")]
    for k, (name, rates) in enumerate(curves.items()):
        marker, size, line = styles[k % len(styles)]
        ax.plot(levels, rates, marker=marker, ms=size, linestyle=line, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [_level(v) for v in levels])
    ax.set_xlabel("eps (grey levels, 1/255)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.04, 1.04)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure


__all__ = ["show_attacks", "show_attack", "show_success", "show_linearity", "show_transfer", "show_digit_attack", "show_digit_change", "show_robust_accuracy"]
