"""A small CNN that the course trains itself, in seconds, on scikit-learn's handwritten digits.

The data are the 1,797 8x8 digits of `sklearn.datasets.load_digits` (UCI optdigits),
upsampled to 28x28 so that a 5x5 first-layer filter has room to become a stroke detector.
`train_digits_cnn` returns the trained network together with snapshots of its first-layer
filters at chosen epochs and, per epoch, the loss, the test accuracy and the fraction of
dead units of every layer: one run draws the "filters during training" figure of
Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*, ECCV 2014 (Fig. 4).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .filters import active_fraction, dead_units, filter_roughness, show_filter_banks, show_filters
from .images import UNIT_RANGE
from .layers import evaluating
from .seeding import forked, generator

# The post-ReLU layers whose units can die (their dead fraction is tracked during training).
UNIT_LAYERS = ("relu1", "relu2", "relu3")
# Notebook 10: a standard network and a robust one, trained alike but for the attacks the robust one learns
# from. Average pooling, because max pooling sends each gradient to one pixel in four (speckled maps); no weight
# decay, and a small learning rate, under which adversarial training does not kill its units.
PAIR = dict(epochs=15, lr=0.01, weight_decay=0.0, pool="avg", snapshot_epochs=())


def load_digits_data(size=28, test_fraction=0.2, seed=0):
    """(x_train, y_train, x_test, y_test): digits as (N, 1, size, size) floats in [0, 1], labels 0-9.

    The 8x8 images (values 0-16) are scaled to [0, 1] and upsampled bilinearly; the split is
    stratified and drawn from `seed`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer of at least 8 pixels, got {size!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    d = load_digits()
    x = torch.from_numpy(d.images / 16.0).float().unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.from_numpy(d.target).long()
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed,
                                           stratify=d.target)
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]


MARKER = 3  # side of the shortcut's square, in pixels


def add_marker(x, y, mode="label", seed=0):
    """Digits with a shortcut: a white MARKER x MARKER square on the top edge whose column tells a label, the
    way a watermark or a background can tell a class in a real dataset (a "Clever Hans" cue).

    mode: "label" (the square sits at the column of the digit's own label: a perfect shortcut), "random" (at
    the column of a label drawn from `seed`: the cue says nothing) or "none" (no square; the digits as they are).
    Returns (x with the squares, the label each square stands for). Where a digit's ink reaches the top edge the
    square is drawn over it.
    """
    if mode not in ("label", "random", "none"):
        raise ValueError(f"mode must be 'label', 'random' or 'none', got {mode!r}")
    x = x.clone()
    cue = y.clone() if mode == "label" else torch.randint(0, 10, y.shape, generator=generator(seed))
    if mode == "none":
        return x, cue
    x[marker_mask(cue, x.shape[-1])[:, None].expand_as(x)] = 1.0
    return x, cue


def marker_mask(cue, size=28):
    """(N, size, size) bool: where `add_marker` draws the square for each label in `cue`."""
    mask = torch.zeros(len(cue), size, size, dtype=torch.bool)
    step = (size - MARKER) / 9
    for i, c in enumerate(torch.as_tensor(cue).tolist()):
        left = round(c * step)
        mask[i, :MARKER, left:left + MARKER] = True
    return mask


class DigitsCNN(nn.Sequential):
    """conv 5x5 (16) - ReLU - max pool - conv 3x3 (32) - ReLU - max pool - fc 64 - ReLU - fc 10.

    Input (N, 1, 28, 28) in [0, 1]. Layer names: conv1 relu1 pool1 conv2 relu2 pool2 flatten
    fc relu3 classifier; `relu3` (64 numbers) is the penultimate feature vector.
    """

    input_range = UNIT_RANGE  # ink on paper as floats (images.unit_images)

    def __init__(self, channels=(16, 32), hidden=64, size=28, pool="max", first=(5, 1)):
        c1, c2 = channels
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        k, stride = first
        if k % 2 != 1 or stride < 1:
            raise ValueError(f"first = (kernel, stride) needs an odd kernel and a stride >= 1, got {first!r}")
        side = ((size - 1) // stride + 1) // 2 // 2  # conv1 (padding k // 2), pool, conv2 (same size), pool
        if side < 1:
            raise ValueError(f"a {size} px input leaves nothing after a stride-{stride} first layer and two poolings")
        pooling = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(1, c1, k, stride=stride, padding=k // 2)), ("relu1", nn.ReLU()), ("pool1", pooling(2)),
            ("conv2", nn.Conv2d(c1, c2, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", pooling(2)),
            ("flatten", nn.Flatten()), ("fc", nn.Linear(c2 * side ** 2, hidden)), ("relu3", nn.ReLU()),
            ("classifier", nn.Linear(hidden, 10)),
        ]))
        for m in self.modules():  # He et al. 2015 initialization, zero biases
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)


@dataclass
class TrainResult:
    """What `train_digits_cnn` returns; `snapshots[e]` are conv1's weights after e epochs."""

    model: DigitsCNN
    snapshots: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)  # loss, test_acc, dead (per layer) per epoch
    models: dict = field(default_factory=dict)  # {epoch: a copy of the whole network} (model_epochs)


def accuracy(model, x, y, batch_size=512):
    """Fraction of `x` that `model` classifies as `y`."""
    with evaluating(model), torch.no_grad():
        pred = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    return float((pred == y).float().mean())


def train_digits_cnn(epochs=12, lr=0.03, weight_decay=0.02, batch_size=32, momentum=0.9, seed=0,
                     snapshot_epochs=(0, 1, 2, 4, 8, 12), data=None, attack=None, pool="max", progress=True,
                     model_epochs=(), first=(5, 1)):
    """Train a DigitsCNN with SGD (momentum, weight decay) on the digits; a few seconds on a CPU.

    data: (x_train, y_train, x_test, y_test), default `load_digits_data()`.
    snapshot_epochs: the epochs after which conv1's filters are copied (0 = at initialization).
    first: (kernel, stride) of conv1 (Zeiler & Fergus compared AlexNet's 11x11 at stride 4 with 7x7 at stride 2).
    model_epochs: the epochs after which the whole network is copied (into `TrainResult.models`), to watch
    every layer's features evolve (Zeiler & Fergus, Fig. 4).
    attack: None, or attack(model, x, y, epoch, generator) -> x': adversarial training (Madry et al. 2018):
    every batch is first attacked (the inner maximization; `adversarial.pgd_training` makes PGD's) and the
    network learns from the attacked batch (the outer minimization).
    Initialization, minibatch order and the attacks' random starts come from `seed`. A diverging run (a
    loss that is not finite) stops and keeps the weights of its last finite epoch; history["diverged"] says so.
    """
    from tqdm.auto import tqdm

    if epochs < 0 or not isinstance(epochs, int):
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if lr <= 0 or weight_decay < 0:
        raise ValueError(f"need lr > 0 and weight_decay >= 0, got lr={lr!r}, weight_decay={weight_decay!r}")
    x_train, y_train, x_test, y_test = data if data is not None else load_digits_data()
    with forked(seed):  # the layers' initialization draws from torch's global generator
        model = DigitsCNN(size=x_train.shape[-1], pool=pool, first=first)
    gen = generator(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    snaps = {0: model.conv1.weight.detach().clone()} if 0 in snapshot_epochs else {}
    models = {0: copy.deepcopy(model).eval()} if 0 in model_epochs else {}
    hist = {"epoch": [0], "loss": [float("nan")], "test_acc": [accuracy(model, x_test, y_test)],
            "dead": [dead_units(model, x_train, UNIT_LAYERS)], "diverged": False}
    for epoch in tqdm(range(1, epochs + 1), desc="training", disable=not progress, leave=False):
        last_good = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if attack is not None:
                xb = attack(model, xb, yb, epoch, gen)
            loss = F.cross_entropy(model(xb), yb)
            if not torch.isfinite(loss):
                hist["diverged"] = True
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if hist["diverged"] or not all(torch.isfinite(p).all() for p in model.parameters()):
            hist["diverged"] = True
            model.load_state_dict(last_good)
            break
        model.eval()
        hist["epoch"].append(epoch)
        hist["loss"].append(total / len(order))
        hist["test_acc"].append(accuracy(model, x_test, y_test))
        hist["dead"].append(dead_units(model, x_train, UNIT_LAYERS))
        if epoch in snapshot_epochs:
            snaps[epoch] = model.conv1.weight.detach().clone()
        if epoch in model_epochs:
            models[epoch] = copy.deepcopy(model).eval()
    model.eval()
    return TrainResult(model, snaps, hist, models)


# ---------------------------------------------------------------- figures (notebook 01)

def show_training(run, epochs=None):
    """conv1's filters at the snapshot epochs of one run, each titled with its test accuracy and roughness."""
    epochs = sorted(run.snapshots) if epochs is None else list(epochs)
    acc = dict(zip(run.history["epoch"], run.history["test_acc"]))
    titles = [f"epoch {e}\nacc {acc[e]:.0%}, rough {filter_roughness(run.snapshots[e]):.2f}" for e in epochs]
    return show_filter_banks([run.snapshots[e] for e in epochs], titles, ncols=4, zoom=6)


def show_runs(runs, size=3.2):
    """conv1's filters of several runs side by side, titled with accuracy, roughness and dead relu1 units.

    runs: {label: TrainResult} (the end of the run), or {label: (TrainResult, epoch)} (a snapshot epoch).
    """
    banks, titles = [], []
    for label, r in runs.items():
        r, epoch = r if isinstance(r, tuple) else (r, None)
        k = -1 if epoch is None else r.history["epoch"].index(epoch)
        w = r.model.conv1.weight if epoch is None else r.snapshots[epoch]
        acc, dead = r.history["test_acc"][k], r.history["dead"][k]
        if epoch is None and r.history["diverged"]:
            label += f"\n(loss NaN in epoch {r.history['epoch'][-1] + 1}: stopped)"
        banks.append(w)
        titles.append(f"{label}\nacc {acc:.0%}, rough {filter_roughness(w):.2f}, dead {dead['relu1']:.0%}")
    return show_filter_banks(banks, titles, ncols=4, zoom=6, size=size)


def shift_agreement(model, x, shifts=((0, 1), (1, 0), (1, 1))):
    """The share of `x` whose predicted class stays the same when the digit is moved by each (rows, columns)
    shift (wrapping around; the digits' borders are blank), averaged over the shifts. A network with a large
    first-layer stride subsamples without filtering first (aliasing), so its answer depends more on where the
    digit sits (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019)."""
    with evaluating(model), torch.no_grad():
        before = model(x).argmax(1)
        same = [(model(torch.roll(x, tuple(s), (-2, -1))).argmax(1) == before).float().mean() for s in shifts]
    return float(torch.stack(same).mean())


def show_activity(run, x, layers=UNIT_LAYERS):
    """How dense each layer's code is after each kept epoch (`filters.active_fraction` over the models of
    `train_digits_cnn(model_epochs=...)`), one line per layer. Returns the Figure."""
    if not run.models:
        raise ValueError("this run kept no networks: train with model_epochs=(0, 1, ...) to watch the layers")
    epochs = sorted(run.models)
    dens = [active_fraction(run.models[e], x, layers) for e in epochs]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for layer in layers:
        ax.plot(epochs, [d[layer] for d in dens], "o-", label=layer)
    ax.set(xlabel="epoch", ylabel="share of activations > 0", ylim=(0, 1), title="How dense each layer's code is")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_retrained(run, lr, weight_decay):
    """What one training run ends with: conv1's filters (`filters.show_filters`), the test accuracy, and the
    fraction of dead units per layer (bars). Returns the Figure."""
    h, weights = run.history, run.model.conv1.weight
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.3), gridspec_kw={"width_ratios": [1.3, 1]})
    show_filters(weights, ncols=8, zoom=6, ax=axes[0],
                 title=f"conv1 after {h['epoch'][-1]} epochs: lr {lr:.3g}, wd {weight_decay:.3g}\n"
                       f"test accuracy {h['test_acc'][-1]:.0%}, roughness {filter_roughness(weights):.2f}")
    axes[1].bar(range(3), [h["dead"][-1][name] for name in UNIT_LAYERS], color="#b03a2e")
    axes[1].set_xticks(range(3), UNIT_LAYERS)
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title("fraction of dead units", fontsize=10)
    fig.tight_layout()
    return fig


def show_dead_units(runs):
    """The fraction of dead units per layer at the end of each run (bars), and of relu2 per epoch (curves).
    runs: {label: TrainResult}; a label's first line names the curve."""
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    for n, (label, r) in enumerate(runs.items()):
        axes[0].bar(np.arange(3) + 0.27 * (n - 1), [r.history["dead"][-1][name] for name in UNIT_LAYERS], width=0.27,
                    label=label.replace("\n", ", "))
        axes[1].plot(r.history["epoch"], [d["relu2"] for d in r.history["dead"]], marker="o", ms=3,
                     label=label.split("\n")[0])
    axes[0].set_xticks(range(3), ["relu1 (conv1)", "relu2 (conv2)", "relu3 (fc)"])
    axes[0].set_ylabel("fraction of dead units")
    axes[0].set_ylim(0, 1.4)
    axes[0].set_yticks([0, 0.25, 0.5, 0.75, 1])
    axes[0].legend(fontsize=7, loc="upper left")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("dead fraction of relu2")
    axes[1].set_ylim(-0.03, 1.05)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig
